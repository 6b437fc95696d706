# The SpacetimeDB server (`spacetime start`) in a container. Not built on the machine this was written on (it has no
# Docker engine): see docs/operations.md "Docker" for what was checked and how to build and run it.
#
# isolated-vm (the module sandbox) compiles a native addon during `npm ci`: the build stage needs python3, make, g++.
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# `npm ci` builds isolated-vm from source and runs `prepare` (the TypeScript build); dev dependencies go afterwards.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
# The data directory (databases, commit logs, snapshots, keys, config.toml) lives on a volume.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 3000
# Inside the container the server must listen on all interfaces; on such an address creating databases is closed
# until config.toml [publish] allow or --allow-publish says who may (docs/operations.md).
ENTRYPOINT ["node", "bin/spacetime.js", "start", "--data-dir", "/data", "--listen-addr", "0.0.0.0:3000"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:3000/v1/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
