// The public API: re-exports only. Each module below owns one step of the pipeline.
export * from './errors.ts';
export * from './image/reference.ts';
export * from './registry/credentials.ts';
export * from './function/spec.ts';
export * from './function/errors.ts';
export * from './function/parse.ts';
export * from './docker/errors.ts';
export * from './docker/connect.ts';
export * from './docker/auth.ts';
export * from './docker/progress.ts';
export * from './docker/build-image.ts';
export * from './docker/push-image.ts';
export * from './runtime/expand.ts';
export * from './runtime/errors.ts';
export * from './runtime/catalog.ts';
export * from './runtime/default-catalog.ts';
