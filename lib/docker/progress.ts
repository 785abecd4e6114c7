// The small progress vocabulary the CLI displays; the Engine's raw messages never leave lib/docker.

export type DockerProgress =
  /** A Dockerfile instruction started (classic builder: "Step 3/9 : RUN ..."). */
  | { kind: 'step'; step: number; steps: number; instruction: string }
  /** One line printed by the build (an instruction's output, cache notes). */
  | { kind: 'output'; line: string }
  /** Bytes of a base image layer being pulled during the build, or of a layer being pushed. */
  | { kind: 'pull' | 'push'; layer: string; status: string; current?: number; total?: number };

export type ProgressListener = (event: DockerProgress) => void;
