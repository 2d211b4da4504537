# Atomic Ledger. A first container set-up (a later issue completes it); not yet built here, as
# this machine has no Docker engine. The image runs against an external Redis (REDIS_URL):
# it does not contain redis-server, so the embedded mode is not available in it.

# Dependencies, from the lockfile only.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: setup.mjs (prestart/pretest) is for developer machines, not the image.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Runtime: the service runs TypeScript through tsx (a production dependency).
FROM node:20-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json tsconfig.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node lua ./lua
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "src/server.ts"]
