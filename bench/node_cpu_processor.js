// Sandboxed (file) processor of bench_processes.py: CPU-bound work proportional to job.data.n.
'use strict';
function spin(n) {
  let total = 0;
  for (let i = 0; i < n; i += 1) total = (total + i * i) % 1000003;
  return total;
}
module.exports = async (job) => spin(job.data.n);
module.exports.spin = spin;
