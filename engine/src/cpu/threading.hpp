#pragma once
// The threading policy's side that the pool reports to (thread_pool.hpp has the rest).
namespace ember::threads {

/// After each parallel operation: whether the caller waited long for a worker's last chunk. A
/// stall means a worker's core was taken; the policy then stays on one thread for a while.
void report_wait(bool stalled);

}  // namespace ember::threads
