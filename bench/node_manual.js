// Node BullMQ side of bench_manual.py: times BullMQ's "manually processing jobs" loop.
// Reads JSON lines {"queue", "prefix", "count", "fetchNext"} on stdin; for each it creates a
// processor-less Worker, takes jobs with getNextJob(token) and completes them with
// moveToCompleted(value, token, fetchNext) (using the job handed back when fetchNext), until
// `count` jobs are done, and answers {"ms": elapsed} from the first take to the last completion.
'use strict';
const path = require('path');
const readline = require('readline');
const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules');
const { Worker, Job } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));

const url = process.argv[2];

async function loop(request) {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const worker = new Worker(request.queue, null, {
    connection, prefix: request.prefix, autorun: false, drainDelay: 1,
  });
  const token = 'bench-token';
  let done = 0;
  const started = process.hrtime.bigint();
  let job = await worker.getNextJob(token);
  while (job && done < request.count) {
    const next = await job.moveToCompleted(null, token, request.fetchNext);
    done += 1;
    if (request.fetchNext) {
      job = Array.isArray(next) && next[0] ? Job.fromJSON(worker, next[0], next[1]) : null;
    } else {
      job = await worker.getNextJob(token, { block: false });
    }
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await worker.close();
  await connection.quit();
  if (done < request.count) return { error: `only ${done} jobs` };
  return { ms };
}

const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const reply = await loop(JSON.parse(line)).catch((e) => ({ error: String(e) }));
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
});
