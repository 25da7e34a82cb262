#include "data_parallel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "ember/device.hpp"
#include "ember/error.hpp"

namespace ember {

DataParallel::DataParallel(Communicator* communicator, bool deterministic, bool sharded, GradientSum gradient_sum)
    : communicator_(communicator != nullptr && communicator->size() > 1 ? communicator : nullptr),
      deterministic_(deterministic),
      sharded_(sharded),
      gradient_sum_(gradient_sum) {
  if (communicator_ == nullptr && gradient_sum == GradientSum::nccl) {
    if (communicator == nullptr) own_ = distributed::single_process();
    communicator_ = communicator != nullptr ? communicator : own_.get();
  }
}

void DataParallel::set_rows(std::int64_t batch_size, std::int64_t train_rows) {
  batch_size_ = batch_size;
  train_rows_ = train_rows;
  batches_ = (train_rows + batch_size - 1) / batch_size;
  if (!sharded()) return;
  const int ranks = communicator_->size();
  if (slice_of(communicator_->rank()) == 0)
    throw InputError(
        fmt::format("sharded data: a batch of {} rows leaves rank {} of {} without rows; use a batch "
                    "size of at least the number of ranks",
                    batch_size, communicator_->rank(), ranks));
  // Every rank's rows, so that each can tell how many rows a step has in all.
  std::vector<double> all;
  const double mine = static_cast<double>(train_rows);
  gather({&mine, 1}, static_cast<std::size_t>(communicator_->rank()), static_cast<std::size_t>(ranks), all);
  rank_rows_.assign(all.begin(), all.end());
  batches_ = 0;
  for (int rank = 0; rank < ranks; ++rank)
    batches_ = std::max(batches_, (rank_rows_[rank] + slice_of(rank) - 1) / slice_of(rank));
}

std::int64_t DataParallel::slice_of(int rank) const {
  return slice_begin(batch_size_, rank + 1) - slice_begin(batch_size_, rank);
}

std::int64_t DataParallel::rows_of(int rank, std::int64_t batch) const {
  if (sharded()) return std::clamp<std::int64_t>(rank_rows_[rank] - batch * slice_of(rank), 0, slice_of(rank));
  const std::int64_t rows = std::min(batch_size_, train_rows_ - batch * batch_size_);
  return slice_begin(rows, rank + 1) - slice_begin(rows, rank);
}

std::int64_t DataParallel::rows_in(std::int64_t batch) const {
  if (!sharded()) return std::min(batch_size_, train_rows_ - batch * batch_size_);
  std::int64_t rows = 0;
  for (int rank = 0; rank < communicator_->size(); ++rank) rows += rows_of(rank, batch);
  return rows;
}

std::uint64_t DataParallel::step_shape(std::int64_t batch) const {
  if (!sharded()) return static_cast<std::uint64_t>(rows_in(batch));  // the global rows decide every slice
  std::uint64_t hash = 14695981039346656037ull;                       // FNV-1a over the ranks' rows
  for (int rank = 0; rank < communicator_->size(); ++rank)
    hash = (hash ^ static_cast<std::uint64_t>(rows_of(rank, batch))) * 1099511628211ull;
  return hash;
}

std::string DataParallel::connect(Backend& backend) {
  if (!active()) return "";
  const std::string ranks = communicator_->describe();
  if (gradient_sum_ == GradientSum::host) return ranks + "; gradients summed on the host";
  std::string library;
  std::string why = collective_unusable(backend, library);
  if (why.empty()) {
    // Rank 0's identity of the collective to every rank, a byte per double.
    std::vector<std::uint8_t> id;
    std::string failure;
    const bool lead = communicator_->rank() == 0;
    if (lead) try {
        id = backend.new_collective_id();
      } catch (const Error& error) {
        failure = error.what();
      }
    const std::vector<double> mine(id.begin(), id.end());
    double length = static_cast<double>(mine.size());
    communicator_->all_reduce({&length, 1}, Reduction::sum);
    std::vector<double> bytes;
    gather(mine, 0, static_cast<std::size_t>(length), bytes);
    id.assign(bytes.begin(), bytes.end());
    // A rank that fails to join leaves the others waiting inside the join (NCCL's bootstrap has no
    // timeout): its error must end the run (the CLI aborts every rank), so it is not caught here.
    if (length > 0)
      collective_ = backend.join_collective(id, communicator_->rank(), communicator_->size());
    else
      why = lead ? failure : "rank 0 could not start the collective";
  }
  if (why.empty()) return fmt::format("{}; gradients summed by {} in the step's CUDA graph", ranks, library);
  if (gradient_sum_ == GradientSum::nccl) throw InputError("GradientSum::nccl: " + why);
  if (backend.device() != Device::cuda) return ranks + "; gradients summed on the host";
  return fmt::format("{}; gradients summed on the host: {}", ranks, why);
}

std::string DataParallel::collective_unusable(Backend& backend, std::string& library) {
  std::string why;
  CollectiveSupport support;
  if (deterministic_) {
    why = "FitOptions::deterministic_reduction adds in rank order on the host";
  } else {
    support = backend.collective_support();
    why = support.unavailable_reason;
    library = support.library;
  }
  if (any(!why.empty())) return why.empty() ? "another rank cannot use its backend's collective" : why;
  const std::size_t devices = unite({support.device}).size();
  const auto ranks = static_cast<std::size_t>(communicator_->size());
  if (devices < ranks)
    return fmt::format("{} ranks share {} GPU{} ({} needs a GPU per rank)", ranks, devices, devices == 1 ? "" : "s",
                       library);
  return "";
}

RankSums DataParallel::rank_sums() {
  if (!sharded()) return {};
  return {.sum = [this](std::vector<double>& values) { sum_over_ranks(values); },
          .unite = [this](const std::set<std::string>& mine) { return unite(mine); }};
}

std::int64_t DataParallel::total(std::int64_t count) {
  if (!sharded()) return count;
  std::vector<double> value{static_cast<double>(count)};
  sum_over_ranks(value);
  return static_cast<std::int64_t>(value[0]);
}

std::set<std::string> DataParallel::unite(const std::set<std::string>& mine) {
  // Each string as its length and its bytes, one per double (exact), gathered.
  std::vector<double> encoded;
  for (const std::string& text : mine) {
    encoded.push_back(static_cast<double>(text.size()));
    for (const char c : text) encoded.push_back(static_cast<double>(static_cast<unsigned char>(c)));
  }
  const auto ranks = static_cast<std::size_t>(communicator_->size());
  const auto rank = static_cast<std::size_t>(communicator_->rank());
  std::vector<double> lengths(ranks, 0.0);
  lengths[rank] = static_cast<double>(encoded.size());
  communicator_->all_reduce(lengths, Reduction::sum);
  std::size_t offset = 0, total = 0;
  for (std::size_t r = 0; r < ranks; ++r) {
    if (r == rank) offset = total;
    total += static_cast<std::size_t>(lengths[r]);
  }
  std::vector<double> all;
  gather(encoded, offset, total, all);
  std::set<std::string> united;
  for (std::size_t at = 0; at < all.size();) {
    const auto length = static_cast<std::size_t>(all[at++]);
    std::string text(length, '\0');
    for (std::size_t i = 0; i < length; ++i) text[i] = static_cast<char>(static_cast<unsigned char>(all[at + i]));
    at += length;
    united.insert(std::move(text));
  }
  return united;
}

void DataParallel::gather(std::span<const double> mine, std::size_t offset, std::size_t total,
                          std::vector<double>& all) {
  // Through the all-reduce every Communicator has: each rank's values in its own segment and zeros
  // elsewhere, so the transport's sums are exact whatever their order.
  all.assign(total, 0.0);
  std::copy(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(offset));
  communicator_->all_reduce(all, Reduction::sum);
}

void DataParallel::sum_over_ranks(std::vector<double>& values) {
  if (!deterministic_) {
    communicator_->all_reduce(values, Reduction::sum);
    return;
  }
  // Gathered, then the segments added in rank order.
  const std::size_t n = values.size();
  const auto ranks = static_cast<std::size_t>(communicator_->size());
  gather(values, n * static_cast<std::size_t>(communicator_->rank()), n * ranks, gathered_);
  for (std::size_t i = 0; i < n; ++i) {
    double total = gathered_[i];
    for (std::size_t r = 1; r < ranks; ++r) total += gathered_[r * n + i];
    values[i] = total;
  }
}

std::int64_t DataParallel::slice_begin(std::int64_t batch_rows, int rank) const {
  // Uneven splits differ by at most one row; the first ranks take the smaller slices.
  return batch_rows * rank / communicator_->size();
}

std::int64_t DataParallel::plan_batch_size() const {
  if (!active()) return batch_size_;
  const int size = communicator_->size();
  return std::max<std::int64_t>(1, (batch_size_ + size - 1) / size);
}

std::vector<std::int32_t> DataParallel::local_order(const std::vector<std::int32_t>& order) const {
  if (!active() || sharded_) return order;
  std::vector<std::int32_t> local;
  const int rank = communicator_->rank();
  for (std::int64_t first = 0; first < train_rows_; first += batch_size_) {
    const std::int64_t rows = std::min(batch_size_, train_rows_ - first);
    local.insert(local.end(), order.begin() + first + slice_begin(rows, rank),
                 order.begin() + first + slice_begin(rows, rank + 1));
  }
  return local;
}

std::vector<float> DataParallel::row_factors(const std::vector<std::int32_t>& order, std::span<const float> weights) {
  // Where this rank's rows of each global batch lie in order: [begin, end).
  const int rank = active() ? communicator_->rank() : 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> spans;
  for (std::int64_t batch = 0; batch < batches_; ++batch) {
    if (sharded()) {
      const std::int64_t begin = std::min(batch * slice_of(rank), train_rows_);
      spans.emplace_back(begin, std::min(begin + slice_of(rank), train_rows_));
    } else {
      const std::int64_t first = batch * batch_size_, rows = std::min(batch_size_, train_rows_ - first);
      spans.emplace_back(first + (active() ? slice_begin(rows, rank) : 0),
                         first + (active() ? slice_begin(rows, rank + 1) : rows));
    }
  }
  std::vector<double> totals(spans.size(), 0.0);
  for (std::size_t b = 0; b < spans.size(); ++b)
    for (std::int64_t p = spans[b].first; p < spans[b].second; ++p)
      totals[b] += weights[static_cast<std::size_t>(order[static_cast<std::size_t>(p)])];
  if (active()) sum_over_ranks(totals);
  std::vector<float> factors(weights.size(), 0.0f);
  for (std::size_t b = 0; b < spans.size(); ++b) {
    const auto rows = static_cast<double>(rows_in(static_cast<std::int64_t>(b)));
    for (std::int64_t p = spans[b].first; p < spans[b].second; ++p) {
      const auto row = static_cast<std::size_t>(order[static_cast<std::size_t>(p)]);
      factors[row] = totals[b] > 0.0 ? static_cast<float>(weights[row] * rows / totals[b]) : 0.0f;
    }
  }
  return factors;
}

bool DataParallel::step(Plan& plan, std::int64_t batch, bool stop_requested) {
  const std::int64_t mine = rows_of(communicator_->rank(), batch);
  if (collective_) {
    if (!warmed_up_) plan.warm_up(*collective_);  // before the first step's capture
    warmed_up_ = true;
    // Each rank's gradient is the mean over its rows: times its share of the step's rows, summed,
    // it is the mean over the global batch.
    plan.train_step(
        mine, DeviceSum{.collective = collective_.get(),
                        .factor = static_cast<float>(static_cast<double>(mine) / static_cast<double>(rows_in(batch))),
                        .shape = step_shape(batch)});
    return any(stop_requested);
  }
  bool stop = false;
  HostReduction host;
  host.reduce = [&](std::vector<float>& gradients) {
    // Each rank's gradient is the mean over its rows: times its rows, summed (in float64), over all
    // ranks' rows, is the mean over the global batch. One more value carries the stops.
    const std::size_t n = gradients.size();
    reduction_.resize(n + kHostStepExtras);
    for (std::size_t i = 0; i < n; ++i) reduction_[i] = static_cast<double>(gradients[i]) * static_cast<double>(mine);
    reduction_[n] = stop_requested ? 1.0 : 0.0;
    sum_over_ranks(reduction_);
    const auto rows = static_cast<double>(rows_in(batch));
    for (std::size_t i = 0; i < n; ++i) gradients[i] = static_cast<float>(reduction_[i] / rows);
    stop = reduction_[n] > 0.0;
  };
  host.sum_statistics = [&](std::vector<float>& values, bool scaled) {
    // A BatchNorm's statistics; scaled ones as the gradients are.
    statistics_.assign(values.begin(), values.end());
    if (scaled)
      for (double& value : statistics_) value *= static_cast<double>(mine);
    sum_over_ranks(statistics_);
    const double rows = scaled ? static_cast<double>(rows_in(batch)) : 1.0;
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(statistics_[i] / rows);
  };
  plan.train_step(mine, host);
  return stop;
}

std::vector<float> DataParallel::sum(const std::vector<float>& local) {
  if (!active()) return local;
  std::vector<double> values(local.begin(), local.end());
  sum_over_ranks(values);
  return {values.begin(), values.end()};
}

bool DataParallel::any(bool condition) {
  if (!active()) return condition;
  double value = condition ? 1.0 : 0.0;
  communicator_->all_reduce({&value, 1}, Reduction::max);
  return value > 0.0;
}

std::uint64_t DataParallel::broadcast(std::uint64_t value) {
  if (!active()) return value;
  // In 16-bit pieces, each exact in a double; the other ranks add zeros.
  double pieces[4];
  for (int i = 0; i < 4; ++i)
    pieces[i] = communicator_->rank() == 0 ? static_cast<double>((value >> (16 * i)) & 0xffffu) : 0.0;
  communicator_->all_reduce(pieces, Reduction::sum);
  std::uint64_t result = 0;
  for (int i = 0; i < 4; ++i) result |= static_cast<std::uint64_t>(pieces[i]) << (16 * i);
  return result;
}

void DataParallel::broadcast(std::vector<float>& parameters, std::vector<float>& state) {
  if (!active()) return;
  communicator_->broadcast(parameters, 0);
  communicator_->broadcast(state, 0);
}

void DataParallel::check_same(const std::vector<float>& parameters, const std::string& when) {
  if (!active()) return;
  // FNV-1a over the bytes, as two 32-bit halves: exact in a double, so min == max means equal.
  std::uint64_t hash = 14695981039346656037ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(parameters.data());
  for (std::size_t i = 0; i < parameters.size() * sizeof(float); ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  const double halves[2] = {static_cast<double>(hash >> 32), static_cast<double>(hash & 0xffffffffu)};
  double low[2] = {halves[0], halves[1]}, high[2] = {halves[0], halves[1]};
  communicator_->all_reduce(low, Reduction::min);
  communicator_->all_reduce(high, Reduction::max);
  if (low[0] != high[0] || low[1] != high[1])
    throw Error(
        fmt::format("the ranks' parameters differ {} (rank {} has checksum {:016x}): the ranks did not take the "
                    "same steps; check that every rank reads the same data with the same options",
                    when, communicator_->rank(), hash));
}

}  // namespace ember
