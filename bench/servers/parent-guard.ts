/**
 * Preloaded (`node --import`) into every server the bench starts, the product included, so
 * that none outlives the bench: when the bench's IPC channel closes (it ended, crashed or was
 * killed with SIGKILL), the server sends itself SIGTERM and shuts down as it would in
 * production. The channel is unref'd so that it never keeps a server alive on its own.
 */
if (process.channel) {
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

export {};
