// Node BullMQ side of bench_wait.py: request/reply round trips with job.waitUntilFinished.
// Usage: node node_wait.js <url> <prefix> <queue> <count>. A Worker (no-op processor returning
// its input) and a QueueEvents run in this process; after a warm-up it times `count`
// sequential add + waitUntilFinished calls and prints {"us": [round trip in microseconds...]}.
'use strict';
const path = require('path');
const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules');
const { Queue, QueueEvents, Worker } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));

async function main() {
  const [url, prefix, name, count] = process.argv.slice(2);
  const connection = () => new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: connection(), prefix });
  const events = new QueueEvents(name, { connection: connection(), prefix });
  const worker = new Worker(name, async job => job.data, { connection: connection(), prefix });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  const once = async n => {
    const job = await queue.add('echo', { n });
    return job.waitUntilFinished(events, 10000);
  };
  for (let i = 0; i < 20; i++) await once(i);
  const us = [];
  for (let i = 0; i < Number(count); i++) {
    const started = process.hrtime.bigint();
    await once(i);
    us.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  await worker.close();
  await events.close();
  await queue.close();
  process.stdout.write(JSON.stringify({ us }) + '\n');
  process.exit(0);
}

main().catch(err => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
