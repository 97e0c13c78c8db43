// Node BullMQ side of bench_processes.py: a Worker with a sandboxed (file) processor.
// argv: redis url. stdin JSON lines: {"calibrate": n} -> {"ms": time of spin(n) in-process},
// or {"queue", "prefix", "count", "concurrency"} -> {"ms"} from the Worker's creation to the
// last completion (children started by the Worker are included, as for our processes).
'use strict';
const path = require('path');
const readline = require('readline');
const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules');
const { Worker } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));
const { spin } = require('./node_cpu_processor');

const url = process.argv[2];
const processorFile = path.join(__dirname, 'node_cpu_processor.js');

async function drain(request) {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const started = process.hrtime.bigint();
  const worker = new Worker(request.queue, processorFile, {
    connection, prefix: request.prefix, concurrency: request.concurrency, autorun: false,
  });
  worker.on('completed', () => {
    done += 1;
    if (done >= request.count) finish();
  });
  worker.on('failed', (job, err) => { process.stderr.write(`failed: ${err}\n`); });
  worker.run();
  await finished;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await worker.close();
  await connection.quit();
  return { ms };
}

function calibrate(n) {
  const times = [];
  for (let r = 0; r < 7; r += 1) {
    const t = process.hrtime.bigint();
    spin(n);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { ms: times[3] };
}

const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const request = JSON.parse(line);
    const reply = request.calibrate
      ? calibrate(request.calibrate)
      : await drain(request).catch((e) => ({ error: String(e) }));
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
});
