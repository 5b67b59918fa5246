# Muster in a container: built from the repository, run as an unprivileged user, data in a volume.
#   docker build -t muster .
#   docker run -p 8090:8090 -p 8091:8091 -v muster-data:/var/lib/muster muster
# NODE_IMAGE: any Debian-based image with Node.js 20.19 or newer and npm (the console's build needs it).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Vite 8 (the console's build) installs with npm 11.
RUN npm --version | grep -q '^1[1-9]\.' || npm install -g npm@11 --no-audit --no-fund
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
COPY packages/api/package.json packages/api/
COPY packages/client/package.json packages/client/
COPY packages/server/package.json packages/server/
COPY packages/console/package.json packages/console/
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    MUSTER_HOST=0.0.0.0 \
    MUSTER_HTTP_PORT=8090 \
    MUSTER_GRPC_PORT=8091 \
    MUSTER_DATA_DIR=/var/lib/muster
RUN groupadd --system muster \
 && useradd --system --gid muster --home-dir /var/lib/muster --shell /usr/sbin/nologin muster \
 && mkdir -p /var/lib/muster && chown muster:muster /var/lib/muster && chmod 0700 /var/lib/muster
WORKDIR /opt/muster
# Only what runs: the built packages, their production dependencies, the proto and the command.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/proto ./proto
COPY --from=build /src/packages/api/package.json ./packages/api/
COPY --from=build /src/packages/api/dist ./packages/api/dist
COPY --from=build /src/packages/client/package.json ./packages/client/
COPY --from=build /src/packages/client/dist ./packages/client/dist
COPY --from=build /src/packages/server/package.json ./packages/server/
COPY --from=build /src/packages/server/dist ./packages/server/dist
USER muster
VOLUME ["/var/lib/muster"]
EXPOSE 8090 8091
# Ready: the store answers and the index is loaded (a plain-HTTP probe; with tls.* on, probe
# with https and the CA instead).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["sh", "-c", "node -e \"fetch('http://127.0.0.1:'+(process.env.MUSTER_HTTP_PORT||8090)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))\""]
# SIGTERM drains: open watches are answered, pending writes flushed, the store closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/muster/bin/muster.js"]
CMD ["server"]
