#!/usr/bin/env node
/* Timing helper for bench_add.py: one Node BullMQ 6 operation, timed inside Node.
 * Usage: node node_add.js <url> <prefix> <queue> <op: add|addBulk|retryJobs> <n>
 * Prints {"seconds": s, "peakRssMb": m} on stdout. Uses tests/interop/node_modules. */
'use strict';
const path = require('path');
const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules');
const { Queue } = require(path.join(modules, 'bullmq'));

async function main() {
  const [url, prefix, name, op, nText] = process.argv.slice(2);
  const n = Number(nText);
  const parsed = new URL(url);
  const connection = { host: parsed.hostname, port: Number(parsed.port || 6379) };
  const queue = new Queue(name, { connection, prefix });
  await queue.waitUntilReady();
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 5);
  const started = process.hrtime.bigint();
  if (op === 'add') {
    for (let i = 0; i < n; i++) await queue.add('bench', { i });
  } else if (op === 'addBulk') {
    const jobs = [];
    for (let i = 0; i < n; i++) jobs.push({ name: 'bench', data: { i } });
    await queue.addBulk(jobs);
  } else if (op === 'retryJobs') {
    await queue.retryJobs({ count: 1000, state: 'failed' });
  } else {
    throw new Error(`unknown op ${op}`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  await queue.close();
  process.stdout.write(JSON.stringify({ seconds, peakRssMb: peak / 1048576 }) + '\n');
}

main().catch(err => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });
