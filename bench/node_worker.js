// Node BullMQ side of bench_worker.py: times a no-op Worker draining a prepared queue.
// Reads JSON lines {"queue", "prefix", "count", "concurrency"} on stdin; for each it starts a
// Worker (no-op processor), waits for `count` completed jobs and answers {"ms": elapsed,
// "cpu_us": this process's user + system CPU meanwhile}, both measured from the Worker's
// creation to the last completion, then closes the Worker.
'use strict';
const path = require('path');
const readline = require('readline');
const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules');
const { Worker } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));

const url = process.argv[2];

async function drain(request) {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const worker = new Worker(request.queue, async () => null, {
    connection, prefix: request.prefix, concurrency: request.concurrency, autorun: false,
  });
  worker.on('completed', () => {
    done += 1;
    if (done >= request.count) finish();
  });
  worker.run();
  await finished;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const used = process.cpuUsage(cpu);
  await worker.close();
  await connection.quit();
  return { ms, cpu_us: used.user + used.system };
}

const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const reply = await drain(JSON.parse(line)).catch((e) => ({ error: String(e) }));
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
});
