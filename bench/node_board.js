// Bull Board (pinned in bench/package.json) serving the same queues as bench_dashboard.py.
//   node bench/node_board.js REDIS_URL PORT PREFIX:QUEUE,QUEUE,... [PREFIX:QUEUE,...]
// Each argument after PORT is one board at /b<index>, for the queues of one prefix.
// Prints "ready" once listening.
'use strict';
const express = require('express');
const { Queue } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { ExpressAdapter } = require('@bull-board/express');

const [url, port, ...boards] = process.argv.slice(2);
const parsed = new URL(url);
const connection = { host: parsed.hostname, port: Number(parsed.port), maxRetriesPerRequest: null };

const app = express();
boards.forEach((spec, index) => {
  const [prefix, names] = spec.split(':');
  const queues = names.split(',').map(
    (name) => new BullMQAdapter(new Queue(name, { connection, prefix }))
  );
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(`/b${index}`);
  createBullBoard({ queues, serverAdapter });
  app.use(`/b${index}`, serverAdapter.getRouter());
});
app.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
