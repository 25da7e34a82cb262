#pragma once
// How many CPU threads Ember uses. Each operation takes as many threads as its work pays for (one
// for small work), never more than num_threads(), and fewer while other processes keep the cores
// busy. Results do not depend on how many threads an operation took: the split of every operation
// into pieces depends only on its shape and num_threads().
#include <string>

namespace ember {

/// The most threads an operation may use. By default EMBER_NUM_THREADS, else OMP_NUM_THREADS, else
/// the cores this process may run on (its CPU affinity and cgroup quota) divided among the
/// launcher's ranks on this node (mpirun, srun).
int num_threads();

/// Sets num_threads() for the whole process (as torch.set_num_threads); 0 restores the default.
/// Throws InputError below 0. Takes effect from the next operation.
void set_num_threads(int threads);

/// One line for `ember info`: the limit, where it came from, the cores and the load seen now.
std::string describe_threads();

}  // namespace ember
