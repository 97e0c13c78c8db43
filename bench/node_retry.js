// Node BullMQ side of bench_retry.py: times job.retry() per call.
// Reads JSON lines {"queue", "prefix", "ids": [...]} on stdin; for each request it loads every
// job with Job.fromId (untimed), then times `await job.retry()` one call at a time and answers
// {"us": [latency in microseconds, ...]}.
'use strict';
const path = require('path');
const readline = require('readline');
const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules');
const { Queue, Job } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));

const url = process.argv[2];
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const queues = new Map();

function queueFor(name, prefix) {
  const key = `${prefix}:${name}`;
  if (!queues.has(key)) {
    queues.set(key, new Queue(name, { connection, prefix, skipMetasUpdate: true }));
  }
  return queues.get(key);
}

async function handle(request) {
  const queue = queueFor(request.queue, request.prefix);
  const jobs = [];
  for (const id of request.ids) {
    jobs.push(await Job.fromId(queue, id));
  }
  const us = [];
  for (const job of jobs) {
    const started = process.hrtime.bigint();
    await job.retry('failed');
    us.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  return { us };
}

const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const reply = await handle(JSON.parse(line)).catch((e) => ({ error: String(e) }));
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
});
lines.on('close', () => chain.then(async () => {
  for (const q of queues.values()) await q.close();
  await connection.quit();
}));
