# Atomic Ledger. `docker build` / `docker compose up` have not been run here (no Docker engine on
# this machine): test/metrics/deploy.test.ts checks this file's structure, and the build output
# (tsc -p tsconfig.build.json, run as CMD does) was run by hand against a real Redis.
# The image needs an external Redis (REDIS_URL); it has no redis-server, so no embedded mode.

# 1. Production dependencies, from the lockfile only.
FROM node:20-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: setup.mjs (prestart/pretest) is for developer machines, not the image.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 2. TypeScript to JavaScript, so the runtime neither compiles at start nor needs typescript.
FROM node:20-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# 3. Runtime: node, production node_modules, compiled JavaScript and the Lua scripts. The files
# stay owned by root, so the service (user node) cannot change its own code.
FROM node:20-alpine AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY lua ./lua
USER node
EXPOSE 3000
# Liveness only (the process answers); docker-compose.yml waits on /readyz for dependants.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; server.ts shuts down gracefully on it.
CMD ["node", "--enable-source-maps", "dist/server.js"]
