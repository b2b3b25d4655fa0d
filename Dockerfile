# syntax=docker/dockerfile:1
# podvisor image: `docker build -t <registry>/podvisor:0.1.0 .` (docs/install.md)
#
# Node 24 (Active LTS, supported until April 2028). Node 20 reached end of life on 2026-04-30 and Node 22 is in
# maintenance until April 2027; every dependency pin works on 20.19+, so the major is a build argument:
#   docker build --build-arg NODE_MAJOR=22 .
ARG NODE_MAJOR=24

# ---- build: compile with tsc, then drop dev dependencies -------------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /app
ENV NODE_ENV=development npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script would compile before the sources are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: distroless Node (no shell, no package manager), user nonroot = 65532 ------------------------------
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module": without it Node would load dist/*.js as CommonJS and fail on `import`.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that the kubelet can verify runAsNonRoot. Nothing is written to the image's file system at run time:
# generated certificates go to --cert-dir (an emptyDir in deploy/), so readOnlyRootFilesystem works.
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "/app/dist/cli.js"]
CMD ["serve"]
