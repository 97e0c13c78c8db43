"""The parts of a ``Worker``, one job each; ``bullmq_sync.worker.Worker`` wires them together.

* ``settings``: BullMQ 6.7's WorkerOptions mapped to keyword settings, checked once;
* ``emitter``: listeners and the events a worker emits;
* ``signals``: the cancellation signal a processor may take, and the job it sees;
* ``locks``: jobs this worker holds, their lock renewal and cancellation;
* ``stalled``: the periodic stalled-job check;
* ``fetcher``: lock tokens, ``fetchJob``, the marker wait, rate-limit waits, ``drained``;
* ``manual_fetch``: ``Worker.get_next_job``, taking jobs by hand on the fetcher's socket;
* ``finisher``: completing, failing, retrying and delaying a job (one script call each);
* ``runners``: how the processor is called: in the slot's thread, or in a child process;
* ``slots``: ``concurrency`` threads that take a job, run it and finish it.
"""
