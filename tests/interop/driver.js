#!/usr/bin/env node
/*
 * Interop test driver for bullmq-sync.
 *
 * A long-lived process that exposes a small set of Node BullMQ operations over
 * a JSON-lines protocol:
 *
 *   stdin  (one request per line):  {"id": n, "op": "<name>", ...args}
 *   stdout (one reply per line):    {"id": n, "ok": true, "result": ...}
 *                                   {"id": n, "ok": false,
 *                                    "error": {"name", "message", "code"}}
 *
 * Requests are handled concurrently; replies carry the request id and may
 * arrive out of order.  Nothing but replies is ever written to stdout: all
 * diagnostics go to stderr.
 *
 * Usage: node driver.js --url redis://127.0.0.1:PORT [--major 5|6] [--cluster]
 *        (--cluster, or a redis+cluster:// URL: talk to a Redis Cluster via ioredis Cluster)
 */
'use strict';

// Keep stdout reserved for protocol replies, whatever a library might log.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const readline = require('readline');

function log(...parts) {
  process.stderr.write(`[driver ${process.pid}] ${parts.join(' ')}\n`);
}

// --------------------------------------------------------------------------
// Command line
// --------------------------------------------------------------------------

function parseArgs(argv) {
  const out = { url: 'redis://127.0.0.1:6379', major: 6 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const key = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (key === '--url') {
      out.url = value();
    } else if (key === '--major') {
      out.major = Number(value());
    } else if (key === '--cluster') {
      out.cluster = true;
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  if (out.major !== 5 && out.major !== 6) {
    throw new Error(`--major must be 5 or 6, got ${out.major}`);
  }
  return out;
}

let ARGS;
try {
  ARGS = parseArgs(process.argv.slice(2));
} catch (err) {
  log(`bad arguments: ${err.message}`);
  process.exit(2);
}

const bull = ARGS.major === 5 ? require('bullmq5') : require('bullmq');
const IORedis = require('ioredis');
const BULL_VERSION = (() => {
  try {
    return require(`${ARGS.major === 5 ? 'bullmq5' : 'bullmq'}/package.json`).version;
  } catch (_err) {
    return null;
  }
})();

function connectionFromUrl(url) {
  const parsed = new URL(url);
  const conn = {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
  };
  if (parsed.username) conn.username = decodeURIComponent(parsed.username);
  if (parsed.password) conn.password = decodeURIComponent(parsed.password);
  const dbPath = parsed.pathname.replace(/^\/+/, '');
  const dbQuery = parsed.searchParams.get('db');
  if (dbPath) conn.db = Number(dbPath);
  else if (dbQuery) conn.db = Number(dbQuery);
  if (parsed.protocol === 'rediss:') conn.tls = {};
  return conn;
}

const BASE_CONNECTION = connectionFromUrl(ARGS.url.replace(/^(rediss?)\+cluster:/, '$1:'));
// Each BullMQ object gets its own copy: they create their own clients.
let connection = () => Object.assign({}, BASE_CONNECTION);

// ---- Redis Cluster mode -------------------------------
// With --cluster or a redis+cluster:// URL every BullMQ object gets its own
// ioredis Cluster seeded with the URL's node (queues must be hash-tagged).
const CLUSTER_MODE = Boolean(ARGS.cluster) || /^rediss?\+cluster:/.test(ARGS.url);
function newCluster(redisOptions) {
  const { host, port, ...rest } = BASE_CONNECTION;
  return new IORedis.Cluster([{ host, port }], { redisOptions: Object.assign({}, rest, redisOptions) });
}
if (CLUSTER_MODE) {
  connection = () => newCluster({ maxRetriesPerRequest: null });
}
// ---- end of Redis Cluster mode ----------------------------------------------

// --------------------------------------------------------------------------
// Object caches
// --------------------------------------------------------------------------

const queues = new Map(); // "prefix\0queue" -> Queue
const flowProducers = new Map(); // prefix -> FlowProducer
const listeners = new Map(); // "prefix\0queue" -> events listener state
const workers = new Set(); // Workers currently used by a `process` op
let rawClient = null; // plain ioredis client, created lazily
const extraWorkers = new Map(); // handle -> long-running Worker (startWorker/stopWorker)
const readyFlags = new Set(); // waitUntilFinished handles whose listener is subscribed

const cacheKey = (prefix, queue) => `${prefix}\u0000${queue}`;

function reportError(what) {
  return err => log(`${what} error: ${err && err.stack ? err.stack : err}`);
}

function getQueue(prefix, name) {
  const key = cacheKey(prefix, name);
  let queue = queues.get(key);
  if (!queue) {
    queue = new bull.Queue(name, { connection: connection(), prefix });
    queue.on('error', reportError(`queue ${prefix}:${name}`));
    queues.set(key, queue);
  }
  return queue;
}

function getFlowProducer(prefix) {
  let producer = flowProducers.get(prefix);
  if (!producer) {
    producer = new bull.FlowProducer({ connection: connection(), prefix });
    producer.on('error', reportError(`flow producer ${prefix}`));
    flowProducers.set(prefix, producer);
  }
  return producer;
}

function getRawClient() {
  if (!rawClient) {
    rawClient = CLUSTER_MODE
      ? newCluster({ maxRetriesPerRequest: 3 })
      : new IORedis(Object.assign(connection(), { maxRetriesPerRequest: 3 }));
    rawClient.on('error', reportError('raw client'));
  }
  return rawClient;
}

// --------------------------------------------------------------------------
// Helpers
// --------------------------------------------------------------------------

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function requireArg(req, name) {
  if (req[name] === undefined || req[name] === null) {
    const err = new Error(`op ${req.op}: missing argument "${name}"`);
    err.name = 'BadRequest';
    throw err;
  }
  return req[name];
}

function queueOf(req) {
  return getQueue(req.prefix || 'bull', String(requireArg(req, 'queue')));
}

function jobJson(job) {
  return job ? job.toJSON() : null;
}

function jobNodeIds(node) {
  return {
    id: node.job.id,
    children: (node.children || []).map(jobNodeIds),
  };
}

// flow introspection and retry_tree: the job a request names, or a JobNotFound error
async function flowJobOf(req) {
  const queue = queueOf(req);
  const jobId = String(requireArg(req, 'jobId'));
  const job = await bull.Job.fromId(queue, jobId);
  if (!job) {
    const err = new Error(`Job ${jobId} not found in ${queue.qualifiedName}`);
    err.name = 'JobNotFound';
    throw err;
  }
  return job;
}

async function isParentJob(job) {
  const counts = await job.getDependenciesCount();
  return Object.values(counts || {}).some(n => Number(n) > 0);
}

function failMessage(job, data) {
  if (data.__failMessage !== undefined) return String(data.__failMessage);
  return `failing attempt ${job.attemptsMade + 1}`;
}

// Processor whose behaviour is driven by job.data (see README of the harness
// in nodebullmq.py).  Shared by every `process` op.
async function dataDrivenProcessor(job) {
  const raw = job.data;
  const data = raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {};
  if (data.__sleepMs) {
    await sleep(Number(data.__sleepMs));
  }
  if (data.__unrecoverable !== undefined) {
    throw new bull.UnrecoverableError(String(data.__unrecoverable));
  }
  if (data.__fail !== undefined) {
    throw new Error(String(data.__fail));
  }
  if (data.__failTimes !== undefined && job.attemptsMade < Number(data.__failTimes)) {
    throw new Error(failMessage(job, data));
  }
  if (Object.prototype.hasOwnProperty.call(data, '__return')) {
    return data.__return;
  }
  if (await isParentJob(job)) {
    return job.getChildrenValues();
  }
  return { ok: true, id: job.id };
}

// --------------------------------------------------------------------------
// Events listener (QueueEvents)
// --------------------------------------------------------------------------

async function lastStreamId(key) {
  const entries = await getRawClient().xrevrange(key, '+', '-', 'COUNT', 1);
  return entries && entries.length ? entries[0][0] : '0-0';
}

function matchesWait(entry, waitFor) {
  if (waitFor.event && entry.event !== waitFor.event) return false;
  if (waitFor.jobId !== undefined && waitFor.jobId !== null) {
    return entry.jobId !== undefined && String(entry.jobId) === String(waitFor.jobId);
  }
  return true;
}

async function stopListener(key) {
  const state = listeners.get(key);
  if (!state) return;
  listeners.delete(key);
  for (const waiter of state.waiters) waiter.resolve();
  state.waiters.clear();
  await state.queueEvents.close().catch(reportError('queue events close'));
}

async function startListener(prefix, name) {
  const key = cacheKey(prefix, name);
  await stopListener(key);
  // Start right after the newest existing stream entry, so that nothing
  // produced after this op returns can be missed (no race with XREAD '$').
  const lastEventId = await lastStreamId(`${prefix}:${name}:events`);
  const state = { events: [], waiters: new Set(), queueEvents: null };
  const queueEvents = new bull.QueueEvents(name, {
    connection: connection(),
    prefix,
    lastEventId,
    blockingTimeout: 1000,
  });
  const originalEmit = queueEvents.emit.bind(queueEvents);
  queueEvents.emit = (event, ...args) => {
    try {
      record(state, event, args);
    } catch (err) {
      log(`recording event ${String(event)} failed: ${err}`);
    }
    return originalEmit(event, ...args);
  };
  queueEvents.on('error', reportError(`queue events ${prefix}:${name}`));
  state.queueEvents = queueEvents;
  listeners.set(key, state);
  await queueEvents.waitUntilReady();
}

function record(state, event, args) {
  if (typeof event !== 'string') return;
  const first = args[0];
  const jobId = first && typeof first === 'object' ? first.jobId : undefined;
  // QueueEvents re-emits every job event as "<event>:<jobId>"; skip those.
  if (jobId !== undefined && event.endsWith(`:${jobId}`)) return;
  const entry = { event };
  if (jobId !== undefined) entry.jobId = jobId;
  entry.args = args.map(arg => (arg instanceof Error ? { name: arg.name, message: arg.message } : arg));
  state.events.push(entry);
  for (const waiter of state.waiters) {
    if (matchesWait(entry, waiter.waitFor)) {
      state.waiters.delete(waiter);
      waiter.resolve();
    }
  }
}

async function collectEvents(prefix, name, waitFor, timeoutMs) {
  const key = cacheKey(prefix, name);
  const state = listeners.get(key);
  if (!state) {
    const err = new Error(`eventsStart was not called for queue ${prefix}:${name}`);
    err.name = 'BadRequest';
    throw err;
  }
  if (waitFor && !state.events.some(entry => matchesWait(entry, waitFor))) {
    await new Promise(resolve => {
      const waiter = { waitFor, resolve: null };
      const timer = setTimeout(() => {
        state.waiters.delete(waiter);
        resolve();
      }, timeoutMs);
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      state.waiters.add(waiter);
    });
  }
  return state.events.splice(0, state.events.length);
}

// ---- telemetry (bullmq-otel) for the api extras tests -----------------------------
let OTEL = null;
function otel() {
  if (!OTEL) {
    const dir = require('path').join(__dirname, 'otel', 'node_modules');
    const load = name => require(require('path').join(dir, name));
    const api = load('@opentelemetry/api');
    const sdk = load('@opentelemetry/sdk-trace-base');
    const { AsyncLocalStorageContextManager } = load('@opentelemetry/context-async-hooks');
    const { W3CTraceContextPropagator } = load('@opentelemetry/core');
    const { BullMQOtel } = load('bullmq-otel');
    const exporter = new sdk.InMemorySpanExporter();
    const provider = new sdk.BasicTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(exporter)] });
    api.trace.setGlobalTracerProvider(provider);
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    OTEL = { api, exporter, telemetry: new BullMQOtel({ tracerName: 'interop' }) };
  }
  return OTEL;
}

const telemetryQueues = new Map();
function telemetryQueue(prefix, name, telemetry) {
  const key = cacheKey(prefix, name);
  let queue = telemetryQueues.get(key);
  if (!queue) {
    queue = new bull.Queue(name, { connection: connection(), prefix, telemetry });
    queue.on('error', reportError(`telemetry queue ${prefix}:${name}`));
    telemetryQueues.set(key, queue);
    queues.set(`${key}\u0000otel`, queue); // closed with the others
  }
  return queue;
}
// ---- end of telemetry (bullmq-otel) ------------------------------------------------

// --------------------------------------------------------------------------
// Worker-based processing
// --------------------------------------------------------------------------

async function runWorker(req) {
  const prefix = req.prefix || 'bull';
  const name = String(requireArg(req, 'queue'));
  const count = req.count === undefined ? 1 : Number(req.count);
  const timeoutMs = req.timeoutMs === undefined ? 10000 : Number(req.timeoutMs);
  const workerOpts = Object.assign({}, req.workerOpts || {});
  if (req.concurrency !== undefined) workerOpts.concurrency = Number(req.concurrency);
  workerOpts.connection = connection();
  workerOpts.prefix = prefix;
  workerOpts.autorun = false;

  const outcomes = [];
  let finish;
  const finished = new Promise(resolve => {
    finish = resolve;
  });
  const checkDone = () => {
    if (outcomes.length >= count) finish(false);
  };

  const worker = new bull.Worker(name, dataDrivenProcessor, workerOpts);
  workers.add(worker);
  worker.on('completed', (job, result) => {
    outcomes.push({
      event: 'completed',
      jobId: job ? job.id : null,
      name: job ? job.name : null,
      returnvalue: result === undefined ? null : result,
      attemptsMade: job ? job.attemptsMade : null,
    });
    checkDone();
  });
  worker.on('failed', (job, err) => {
    outcomes.push({
      event: 'failed',
      jobId: job ? job.id : null,
      name: job ? job.name : null,
      failedReason: err ? err.message : null,
      attemptsMade: job ? job.attemptsMade : null,
    });
    checkDone();
  });
  worker.on('error', reportError(`worker ${prefix}:${name}`));

  const timer = setTimeout(() => finish(true), timeoutMs);
  checkDone(); // count <= 0
  const running = worker.run().catch(reportError(`worker ${prefix}:${name} run`));
  let timedOut;
  try {
    timedOut = await finished;
  } finally {
    clearTimeout(timer);
    // On timeout do not wait for (possibly stuck) active jobs.
    await worker.close(timedOut !== false).catch(reportError('worker close'));
    if (timedOut) {
      // A force-closed worker's run() only settles once its (possibly stuck)
      // processors return; don't hold the reply for that.
      await Promise.race([running, sleep(1000)]);
    } else {
      await running;
    }
    workers.delete(worker);
  }
  if (timedOut) {
    log(`process ${prefix}:${name}: timed out after ${timeoutMs} ms with ${outcomes.length}/${count} events`);
  }
  return outcomes;
}

// --------------------------------------------------------------------------
// Operations
// --------------------------------------------------------------------------

const ops = {
  async ping() {
    return { major: ARGS.major, version: BULL_VERSION, node: process.version };
  },

  async add(req) {
    const job = await queueOf(req).add(requireArg(req, 'name'), req.data === undefined ? {} : req.data, req.opts || {});
    return { id: job.id };
  },

  async addBulk(req) {
    const jobs = requireArg(req, 'jobs').map(j => ({
      name: j.name,
      data: j.data === undefined ? {} : j.data,
      opts: j.opts || {},
    }));
    const added = await queueOf(req).addBulk(jobs);
    return { ids: added.map(job => job.id) };
  },

  async addFlow(req) {
    const node = await getFlowProducer(req.prefix || 'bull').add(requireArg(req, 'flow'));
    return { ids: jobNodeIds(node) };
  },

  async getJob(req) {
    const queue = queueOf(req);
    const job = await bull.Job.fromId(queue, String(requireArg(req, 'jobId')));
    if (!job) return null;
    return { json: jobJson(job), state: await job.getState() };
  },

  async retryJob(req) {
    const queue = queueOf(req);
    const jobId = String(requireArg(req, 'jobId'));
    const job = await bull.Job.fromId(queue, jobId);
    if (!job) {
      const err = new Error(`Job ${jobId} not found in ${queue.qualifiedName}`);
      err.name = 'JobNotFound';
      throw err;
    }
    await job.retry(req.state || 'failed', req.opts || {});
    return null;
  },

  async retryJobs(req) {
    return (await queueOf(req).retryJobs(req.opts || {})) ?? null;
  },

  async promoteJobs(req) {
    return (await queueOf(req).promoteJobs(req.opts || {})) ?? null;
  },

  async pause(req) {
    await queueOf(req).pause();
    return null;
  },

  async resume(req) {
    await queueOf(req).resume();
    return null;
  },

  async isPaused(req) {
    return queueOf(req).isPaused();
  },

  async getJobCounts(req) {
    const types = req.types === undefined || req.types === null ? [] : [].concat(req.types);
    return queueOf(req).getJobCounts(...types);
  },

  async getJobs(req) {
    const types = req.types === undefined || req.types === null ? undefined : req.types;
    const jobs = await queueOf(req).getJobs(
      types,
      req.start === undefined ? 0 : req.start,
      req.end === undefined ? -1 : req.end,
      req.asc === undefined ? false : req.asc,
    );
    return jobs.map(jobJson);
  },

  async obliterate(req) {
    await queueOf(req).obliterate(req.opts || {});
    return null;
  },

  async drain(req) {
    await queueOf(req).drain(Boolean(req.delayed));
    return null;
  },

  async setGlobalConcurrency(req) {
    return (await queueOf(req).setGlobalConcurrency(Number(requireArg(req, 'concurrency')))) ?? null;
  },

  async process(req) {
    return runWorker(req);
  },

  async eventsStart(req) {
    await startListener(req.prefix || 'bull', String(requireArg(req, 'queue')));
    return null;
  },

  async eventsCollect(req) {
    const timeoutMs = req.timeoutMs === undefined ? 5000 : Number(req.timeoutMs);
    return collectEvents(req.prefix || 'bull', String(requireArg(req, 'queue')), req.waitFor || null, timeoutMs);
  },

  async eventsStop(req) {
    await stopListener(cacheKey(req.prefix || 'bull', String(requireArg(req, 'queue'))));
    return null;
  },

  // ---- job schedulers (bullmq-sync schedulers task) --------------------------
  async upsertJobScheduler(req) {
    const job = await queueOf(req).upsertJobScheduler(
      String(requireArg(req, 'schedulerId')), requireArg(req, 'repeat'), req.template || undefined);
    return job ? { id: job.id, name: job.name, data: job.data, opts: job.opts } : null;
  },

  async getJobScheduler(req) {
    return (await queueOf(req).getJobScheduler(String(requireArg(req, 'schedulerId')))) ?? null;
  },

  async getJobSchedulers(req) {
    return queueOf(req).getJobSchedulers(req.start ?? 0, req.end ?? -1, Boolean(req.asc));
  },

  async removeJobScheduler(req) {
    return queueOf(req).removeJobScheduler(String(requireArg(req, 'schedulerId')));
  },
  // ---- end of job schedulers ---------------------------------------------------

  // ---- worker steps (bullmq-sync worker extras task) ---------------------------
  async getRateLimitTtl(req) {
    return queueOf(req).getRateLimitTtl(req.maxJobs === undefined ? undefined : Number(req.maxJobs));
  },

  async getMetrics(req) {
    return queueOf(req).getMetrics(String(requireArg(req, 'type')), req.start ?? 0, req.end ?? -1);
  },

  async rateLimit(req) {
    await queueOf(req).rateLimit(Number(requireArg(req, 'expireTimeMs')));
    return null;
  },
  // ---- end of worker steps -----------------------------------------------------

  // ---- manual processing (bullmq-sync manual processing task) -----------------
  // A processor-less Worker per queue (BullMQ's "manually processing jobs"); jobs
  // are re-read with Job.fromId(worker, id) so they carry the worker's options.
  async manualGetNextJob(req) {
    const worker = manualWorker(req);
    const job = await worker.getNextJob(String(requireArg(req, 'token')), { block: Boolean(req.block) });
    return job ? { id: job.id, json: jobJson(job) } : null;
  },

  async manualMoveToCompleted(req) {
    const job = await manualJob(req);
    const next = await job.moveToCompleted(
      req.returnValue === undefined ? null : req.returnValue,
      String(requireArg(req, 'token')),
      Boolean(req.fetchNext),
    );
    return nextJobId(next);
  },

  async manualMoveToFailed(req) {
    const job = await manualJob(req);
    const next = await job.moveToFailed(
      new Error(String(requireArg(req, 'message'))),
      String(requireArg(req, 'token')),
      Boolean(req.fetchNext),
    );
    return nextJobId(next);
  },

  async manualExtendLock(req) {
    const job = await manualJob(req);
    return job.extendLock(String(requireArg(req, 'token')), Number(requireArg(req, 'duration')));
  },
  // ---- end of manual processing -------------------------------------------------

  // ---- node-shaped arguments (bullmq-sync shapes task) ---------------------------
  // queueCall: a fresh Queue built with `queueOpts` (QueueOptions minus connection/prefix);
  // its meta is written as Node writes it (unless skipMetasUpdate), then queue[method](...args).
  async queueCall(req) {
    const opts = Object.assign({}, req.queueOpts || {}, { connection: connection(), prefix: req.prefix || 'bull' });
    const queue = new bull.Queue(String(requireArg(req, 'queue')), opts);
    queue.on('error', reportError(`queueCall ${req.queue}`));
    try {
      if (!opts.skipMetasUpdate) await queue.getVersion();
      if (!req.method) return null;
      return shapedResult(await queue[req.method](...(req.args || [])));
    } finally {
      await queue.close();
    }
  },

  // jobCall: Job.fromId(jobId)[method](...args) on the cached queue.
  async jobCall(req) {
    const queue = queueOf(req);
    const jobId = String(requireArg(req, 'jobId'));
    const job = await bull.Job.fromId(queue, jobId);
    if (!job) {
      const err = new Error(`Job ${jobId} not found in ${queue.qualifiedName}`);
      err.name = 'JobNotFound';
      throw err;
    }
    return shapedResult(await job[String(requireArg(req, 'method'))](...(req.args || [])));
  },
  // addFlowWithOpts: FlowProducer.add(flow, opts) (opts = {queuesOptions: ...}).
  async addFlowWithOpts(req) {
    const node = await getFlowProducer(req.prefix || 'bull').add(requireArg(req, 'flow'), req.opts || undefined);
    return { ids: jobNodeIds(node) };
  },
  // ---- end of node-shaped arguments ---------------------------------------------

  // ---- flow introspection and retry_tree (bullmq-sync flows task) --------------
  async getDependencies(req) {
    return (await flowJobOf(req)).getDependencies(req.opts || {});
  },

  async getIgnoredChildrenFailures(req) {
    return (await flowJobOf(req)).getIgnoredChildrenFailures();
  },

  async getFailedChildrenValues(req) {
    return (await flowJobOf(req)).getFailedChildrenValues();
  },

  async removeUnprocessedChildren(req) {
    await (await flowJobOf(req)).removeUnprocessedChildren();
    return null;
  },

  async getFlow(req) {
    const tree = await getFlowProducer(req.prefix || 'bull').getFlow(requireArg(req, 'opts'));
    const plain = node => (node
      ? { job: jobJson(node.job), children: node.children ? node.children.map(plain) : null }
      : null);
    return plain(tree);
  },
  // ---- end of flow introspection and retry_tree ----------------------------------

  // ---- waiting for results, workers, counts and metrics (bullmq-sync api extras) --
  async queueMethod(req) {
    const allowed = new Set([
      'getWaitingCount', 'getActiveCount', 'getDelayedCount', 'getCompletedCount',
      'getFailedCount', 'getPrioritizedCount', 'getWaitingChildrenCount',
      'getCountsPerPriority', 'trimEvents', 'getWorkers', 'getWorkersCount',
      'exportPrometheusMetrics', 'getQueueEvents',
    ]);
    const method = String(requireArg(req, 'method'));
    if (!allowed.has(method)) throw new Error(`queueMethod: ${method} is not allowed`);
    const queue = queueOf(req);
    const result = await queue[method](...(req.args || []));
    return result === undefined ? null : result;
  },

  async startWorker(req) {
    const handle = String(requireArg(req, 'handle'));
    const opts = Object.assign({}, req.workerOpts || {}, {
      connection: connection(), prefix: req.prefix || 'bull', autorun: false,
    });
    const worker = new bull.Worker(String(requireArg(req, 'queue')), dataDrivenProcessor, opts);
    worker.on('error', reportError(`worker ${handle}`));
    extraWorkers.set(handle, worker);
    workers.add(worker);
    worker.run().catch(reportError(`worker ${handle} run`));
    await worker.waitUntilReady();
    // The blocking connection is named once connected: wait for its first fetch.
    await sleep(200);
    return null;
  },

  async stopWorker(req) {
    const handle = String(requireArg(req, 'handle'));
    const worker = extraWorkers.get(handle);
    if (!worker) return null;
    extraWorkers.delete(handle);
    await worker.close(true);
    workers.delete(worker);
    return null;
  },

  async waitUntilFinished(req) {
    const prefix = req.prefix || 'bull';
    const name = String(requireArg(req, 'queue'));
    const queue = queueOf(req);
    const events = new bull.QueueEvents(name, { connection: connection(), prefix });
    try {
      await events.waitUntilReady();
      const job = await bull.Job.fromId(queue, String(requireArg(req, 'jobId')));
      if (!job) throw new Error('no such job');
      if (req.readyHandle) readyFlags.add(String(req.readyHandle));
      try {
        return { returnvalue: (await job.waitUntilFinished(events, req.ttl)) ?? null };
      } catch (err) {
        return { error: err.message };
      }
    } finally {
      await events.close();
    }
  },

  async isReady(req) {
    return readyFlags.has(String(requireArg(req, 'handle')));
  },

  // Telemetry with bullmq-otel (tests/interop/otel, installed by its own `npm ci`): a Node
  // Queue/Worker configured as BullMQ documents it, spans kept in memory for the test.
  async otelAdd(req) {
    const { telemetry, api } = otel();
    const queue = telemetryQueue(req.prefix || 'bull', String(requireArg(req, 'queue')), telemetry);
    const tracer = api.trace.getTracer('interop');
    return tracer.startActiveSpan('node request', async span => {
      try {
        const job = await queue.add(requireArg(req, 'name'), req.data || {}, req.opts || {});
        return { id: job.id, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
      } finally {
        span.end();
      }
    });
  },

  async otelProcess(req) {
    const { telemetry } = otel();
    return runWorker(Object.assign({}, req, {
      workerOpts: Object.assign({}, req.workerOpts || {}, { telemetry }),
    }));
  },

  async otelSpans() {
    const { exporter } = otel();
    const spans = exporter.getFinishedSpans().map(span => ({
      name: span.name,
      kind: span.kind,
      traceId: span.spanContext().traceId,
      spanId: span.spanContext().spanId,
      parentSpanId: span.parentSpanContext ? span.parentSpanContext.spanId : (span.parentSpanId || null),
    }));
    exporter.reset();
    return spans;
  },
  // ---- end of waiting for results, workers, counts and metrics -------------------
};


// ---- manual processing helpers (bullmq-sync manual processing task) ----------
const manualWorkers = new Map(); // "prefix\0queue" -> processor-less Worker

function manualWorker(req) {
  const prefix = req.prefix || 'bull';
  const name = String(requireArg(req, 'queue'));
  const key = cacheKey(prefix, name);
  let worker = manualWorkers.get(key);
  if (!worker) {
    const opts = Object.assign({}, req.workerOpts || {}, { connection: connection(), prefix, autorun: false });
    worker = new bull.Worker(name, null, opts);
    worker.on('error', reportError(`manual worker ${prefix}:${name}`));
    manualWorkers.set(key, worker);
    workers.add(worker); // closed by closeAll
  }
  return worker;
}

async function manualJob(req) {
  const worker = manualWorker(req);
  const jobId = String(requireArg(req, 'jobId'));
  const job = await bull.Job.fromId(worker, jobId);
  if (!job) {
    const err = new Error(`Job ${jobId} not found`);
    err.name = 'JobNotFound';
    throw err;
  }
  return job;
}

function nextJobId(result) {
  // moveToCompleted / moveToFailed with fetchNext: [jobData, jobId, limitUntil, delayUntil]
  return Array.isArray(result) && result[0] ? String(result[1]) : null;
}
// ---- end of manual processing helpers -----------------------------------------


function shapedResult(result) {
  if (result === undefined) return null;
  if (result instanceof bull.Job) return { id: result.id, name: result.name, data: result.data, opts: result.opts };
  return result;
}

// --------------------------------------------------------------------------
// Protocol plumbing
// --------------------------------------------------------------------------

function serialize(reply) {
  try {
    return JSON.stringify(reply);
  } catch (_err) {
    // Fall back to a cycle-tolerant encoding (BigInt as string).
    const seen = new WeakSet();
    return JSON.stringify(reply, (_key, value) => {
      if (typeof value === 'bigint') return value.toString();
      if (value && typeof value === 'object') {
        if (seen.has(value)) return '[Circular]';
        seen.add(value);
      }
      return value;
    });
  }
}

function send(reply, callback) {
  process.stdout.write(`${serialize(reply)}\n`, callback);
}

function errorPayload(err) {
  if (!(err instanceof Error)) {
    return { name: 'Error', message: String(err), code: null };
  }
  return {
    name: err.name || 'Error',
    message: err.message,
    code: err.code === undefined ? null : err.code,
  };
}

let shuttingDown = null;

async function closeAll() {
  const tasks = [];
  for (const worker of workers) tasks.push(worker.close(true).catch(reportError('worker close')));
  for (const key of Array.from(listeners.keys())) tasks.push(stopListener(key));
  await Promise.all(tasks);
  const closing = [];
  for (const queue of queues.values()) closing.push(queue.close().catch(reportError('queue close')));
  for (const producer of flowProducers.values()) closing.push(producer.close().catch(reportError('flow close')));
  if (rawClient) closing.push(rawClient.quit().catch(() => rawClient.disconnect()));
  await Promise.all(closing);
  queues.clear();
  flowProducers.clear();
  rawClient = null;
}

function shutdown(exitCode, reply) {
  if (!shuttingDown) {
    // Never hang on exit: whatever happens, leave after a grace period.
    setTimeout(() => {
      log('forced exit: closing BullMQ objects took too long');
      process.exit(exitCode || 1);
    }, 10000);
    shuttingDown = closeAll()
      .catch(reportError('shutdown'))
      .then(() => {
        if (reply) send(reply, () => process.exit(exitCode));
        else process.exit(exitCode);
      });
  }
  return shuttingDown;
}

async function handleLine(line) {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (err) {
    log(`ignoring unparsable request line: ${line.slice(0, 200)}`);
    return;
  }
  const id = req && req.id !== undefined ? req.id : null;
  if (!req || typeof req !== 'object' || typeof req.op !== 'string') {
    send({ id, ok: false, error: { name: 'BadRequest', message: 'request must be an object with an "op" string', code: null } });
    return;
  }
  if (req.op === 'close') {
    shutdown(0, { id, ok: true, result: null });
    return;
  }
  if (shuttingDown) {
    send({ id, ok: false, error: { name: 'ShuttingDown', message: 'driver is shutting down', code: null } });
    return;
  }
  const handler = Object.prototype.hasOwnProperty.call(ops, req.op) ? ops[req.op] : null;
  if (!handler) {
    send({ id, ok: false, error: { name: 'UnknownOp', message: `unknown op ${req.op}`, code: null } });
    return;
  }
  try {
    const result = await handler(req);
    send({ id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    log(`op ${req.op} (id ${id}) failed: ${err && err.stack ? err.stack : err}`);
    send({ id, ok: false, error: errorPayload(err) });
  }
}

process.on('unhandledRejection', reason => {
  log(`unhandled rejection: ${reason && reason.stack ? reason.stack : reason}`);
});
process.on('uncaughtException', err => {
  log(`uncaught exception: ${err && err.stack ? err.stack : err}`);
});
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdout.on('error', err => {
  // EPIPE: the Python side went away; nothing left to talk to.
  log(`stdout error: ${err.message}`);
  shutdown(1);
});

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
input.on('line', line => {
  handleLine(line).catch(reportError('request handling'));
});
input.on('close', () => {
  // stdin EOF: the parent is gone or done with us.
  shutdown(0);
});

log(`ready: bullmq ${BULL_VERSION} (major ${ARGS.major}) on ${BASE_CONNECTION.host}:${BASE_CONNECTION.port}`);
