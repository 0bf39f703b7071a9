# live-im node image for fly.io: Bun, production packages only, non-root.
FROM oven/bun:1.4.5-slim
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production
COPY tsconfig.json ./
COPY src ./src
COPY drizzle ./drizzle
USER bun
ENV NODE_ENV=production
EXPOSE 8080 9000
CMD ["bun", "src/main.ts"]
