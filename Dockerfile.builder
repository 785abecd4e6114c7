# The function-image-builder Job image: `function-image-builder job` builds the Function mounted into
# the pod and pushes its image; `function-image-builder wait <image>` is the init container that makes
# a function's pod wait for its image. See docs/kubernetes.md ("The Job image") for building and pushing it.
#
#   npm ci
#   docker build -f Dockerfile.builder -t <registry>/function-image-builder:<version> .
#
# The classic builder is enough (no BuildKit syntax). NODE_IMAGE is the base of both stages: any image
# with Node.js 24 and npm on PATH and /bin/sh.
ARG NODE_IMAGE=node:24-slim

# ---- compile: TypeScript → dist/, then drop the development dependencies ----
FROM ${NODE_IMAGE} AS compile
# Some Node images default to an unprivileged user; the build writes to /src.
USER 0
WORKDIR /src
# .dockerignore lets in only package*.json, tsconfig*.json, lib/, cli/ and node_modules/.
COPY . .
# With the node_modules of `npm ci` in the build context nothing is downloaded, so the image builds
# where the build cannot reach a registry; without them npm ci fetches the locked versions.
RUN set -e; \
    if [ -d node_modules ]; then \
      echo "dependencies: node_modules from the build context"; \
    else \
      npm ci --ignore-scripts --no-audit --no-fund; \
    fi; \
    node node_modules/typescript/bin/tsc -p tsconfig.build.json; \
    npm prune --omit=dev --ignore-scripts --no-audit --no-fund --offline; \
    test -f dist/cli/main.js

# ---- runtime: Node.js, the compiled code and the production dependencies only ----
FROM ${NODE_IMAGE}
# The Docker Engine socket mounted from the node is writable by root only.
USER 0
WORKDIR /opt/function-image-builder
COPY --from=compile /src/package.json /src/package-lock.json ./
COPY --from=compile /src/node_modules ./node_modules
COPY --from=compile /src/dist ./dist
ENV NODE_ENV=production
ENTRYPOINT ["node", "/opt/function-image-builder/dist/cli/main.js"]
CMD ["job"]
