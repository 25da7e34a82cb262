// The CPU emulator's streams, events, copies, captures and graphs (README.md here).
//
// Each stream is a queue. Its work runs only when something waits for it: the host (a stream or
// event synchronization, a synchronous copy, cudaFree) or another stream's work, through an
// event. Among the work that may then run, the stream order picks what runs next (the
// EMBER_EMULATOR_STREAMS environment variable, or set_stream_order):
//   late         only what the waiter needs, a stream's work as late as the events allow (default);
//   early        every other ready stream before the one waited on, as early as the events allow;
//   interleaved  one item of each ready stream in turn.
// Two streams that share data without an event between them then read stale data, or data
// overwritten too soon, in one of these orders, where a GPU would do so only now and then. A
// capture records each stream's work and its waits on other streams; a graph launch queues them
// again, as branches that the same orders schedule.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "internal.hpp"

namespace ember::emulator {
namespace {

struct Queue;

/// An item of a queue: work, or (without work) a wait until `after` has completed `position` items.
struct Item {
  Work work;
  std::shared_ptr<Queue> after;
  std::size_t position = 0;
};

Item work_item(Work work) {
  return {std::move(work), nullptr, 0};
}
Item wait_item(std::shared_ptr<Queue> after, std::size_t position) {
  return {Work{}, std::move(after), position};
}

struct Queue {
  std::deque<Item> pending;
  std::size_t submitted = 0;  // items ever queued
  std::size_t completed = 0;  // items ever run
};

/// A captured item: work, or (list >= 0) a wait until that list of the capture has `position` items done.
struct CapturedItem {
  Work work;
  int list = -1;
  std::size_t position = 0;
};
using CapturedLists = std::vector<std::vector<CapturedItem>>;  // per stream; 0 is the origin's

struct Capture {
  CapturedLists lists{1};
  std::vector<CUstream_st*> members;  // the stream of each list
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  bool invalidated = false;
};

StreamOrder order_from_environment() {
  const char* name = std::getenv("EMBER_EMULATOR_STREAMS");
  const std::string text = name != nullptr ? name : "late";
  if (text == "late") return StreamOrder::late;
  if (text == "early") return StreamOrder::early;
  if (text == "interleaved") return StreamOrder::interleaved;
  std::fprintf(stderr, "CUDA emulator: EMBER_EMULATOR_STREAMS=%s: use late, early or interleaved\n", text.c_str());
  std::abort();
}

}  // namespace
}  // namespace ember::emulator

struct CUstream_st {
  unsigned flags = 0;
  std::shared_ptr<ember::emulator::Queue> queue = std::make_shared<ember::emulator::Queue>();
  std::shared_ptr<ember::emulator::Capture> capture;  // set while the stream takes part in a capture
  int list = -1;                                      // its list in that capture
  bool joined = true;  // a forked stream: whether the capture has waited on its last work
};
struct CUevent_st {
  unsigned flags = 0;
  // Its last record: after `position` items of a stream's queue, with the time they completed;
  std::shared_ptr<ember::emulator::Queue> queue;
  std::size_t position = 0;
  std::shared_ptr<std::chrono::steady_clock::time_point> time;
  // or, in a capture, after `position` items of the capture's list `list`.
  std::shared_ptr<ember::emulator::Capture> capture;
  int list = -1;
};
struct CUgraph_st {
  std::shared_ptr<const ember::emulator::CapturedLists> lists;
};
struct CUgraphExec_st {
  std::shared_ptr<const ember::emulator::CapturedLists> lists;
};

namespace ember::emulator {
namespace {

StreamOrder order = order_from_environment();
CUstream_st legacy_stream;  // stream 0
std::set<CUstream_st*> streams{&legacy_stream};
std::set<CUevent_st*> events;
// Every queue that may hold items: the streams', and those of graph launches' branches.
std::vector<std::shared_ptr<Queue>> queues{legacy_stream.queue};
std::size_t turn = 0;     // the interleaved order's next pick
int strict_captures = 0;  // captures in global or thread-local mode (one host thread: both forbid the same calls)

CUstream_st* resolve(cudaStream_t stream) {
  return stream == nullptr ? &legacy_stream : stream;
}

void enqueue(Queue& queue, Item item) {
  queue.pending.push_back(std::move(item));
  ++queue.submitted;
}

bool is_ready(const Queue& queue) {
  if (queue.pending.empty()) return false;
  const Item& front = queue.pending.front();
  return !front.after || front.after->completed >= front.position;
}

/// What runs next so that `target` progresses, in the stream order.
Queue* choose(Queue& target) {
  if (order == StreamOrder::late) {  // the target, or down the chain of waits that blocks it
    Queue* queue = &target;
    while (!queue->pending.empty() && !is_ready(*queue)) queue = queue->pending.front().after.get();
    return is_ready(*queue) ? queue : nullptr;
  }
  std::vector<Queue*> ready;
  for (const auto& queue : queues)
    if (is_ready(*queue)) ready.push_back(queue.get());
  if (ready.empty()) return nullptr;
  if (order == StreamOrder::early) {
    for (Queue* queue : ready)
      if (queue != &target) return queue;
    return ready.front();
  }
  return ready[turn++ % ready.size()];
}

/// Runs work until `target` has completed `position` items.
void run_until(Queue& target, std::size_t position) {
  if (target.completed >= position) return;
  allow_device_memory(true);
  while (target.completed < position) {
    Queue* next = choose(target);
    if (next == nullptr) {  // every wait names work queued before it, so this cannot happen
      fail(cudaErrorUnknown, "streams wait on each other");
      std::abort();
    }
    Item item = std::move(next->pending.front());
    next->pending.pop_front();
    if (item.work && sticky_error == cudaSuccess) item.work();
    ++next->completed;
  }
  allow_device_memory(false);
  // Graph branches that have run to their end are done with.
  std::erase_if(queues,
                [](const std::shared_ptr<Queue>& queue) { return queue.use_count() == 1 && queue->pending.empty(); });
}

void run_stream(CUstream_st* stream) {
  run_until(*stream->queue, stream->queue->submitted);
}

/// A new stream or event with `flags`, registered so that later calls can check the handle.
template <typename Handle>
cudaError_t create_handle(Handle** handle, std::set<Handle*>& registry, unsigned flags) {
  *handle = new Handle{};
  (*handle)->flags = flags;
  registry.insert(*handle);
  return cudaSuccess;
}
template <typename Handle>
cudaError_t destroy_handle(Handle* handle, std::set<Handle*>& registry, const char* call) {
  if (handle == nullptr || registry.erase(handle) == 0) return fail(cudaErrorInvalidResourceHandle, call);
  delete handle;
  return cudaSuccess;
}

/// Checks a copy's ranges: device sides inside one allocation, host sides outside any.
cudaError_t check_copy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
  const bool device_destination = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool device_source = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost)
    return fail(cudaErrorInvalidValue, "cudaMemcpy kind not emulated");
  if (device_destination != is_device_pointer(destination) || device_source != is_device_pointer(source))
    return fail(cudaErrorInvalidValue, "cudaMemcpy: a pointer on the wrong side for its kind");
  if ((device_destination && !is_device_range(destination, bytes)) ||
      (device_source && !is_device_range(source, bytes)))
    return fail(cudaErrorInvalidValue, "cudaMemcpy: the range runs past its allocation");
  return cudaSuccess;
}

}  // namespace

StreamOrder set_stream_order(StreamOrder next) {
  const StreamOrder previous = order;
  order = next;
  return previous;
}

cudaError_t submit(cudaStream_t stream, Work work) {
  if (sticky_error != cudaSuccess) return sticky_error;
  CUstream_st* s = resolve(stream);
  if (streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "unknown stream");
  if (s->capture) {
    if (s->capture->invalidated) return fail(cudaErrorStreamCaptureInvalidated, "capture already invalidated");
    s->capture->lists[s->list].push_back({std::move(work), -1, 0});
    s->joined = false;
    return cudaSuccess;
  }
  if (s == &legacy_stream) run_blocking_streams();
  enqueue(*s->queue, work_item(std::move(work)));
  if (s == &legacy_stream) run_stream(s);
  return sticky_error;
}

void run_all_streams() {
  for (;;) {
    const auto busy = std::find_if(queues.begin(), queues.end(),
                                   [](const std::shared_ptr<Queue>& queue) { return !queue->pending.empty(); });
    if (busy == queues.end()) return;
    const std::shared_ptr<Queue> queue = *busy;
    run_until(*queue, queue->submitted);
  }
}

void run_blocking_streams() {
  for (CUstream_st* s : streams)
    if (s->flags == 0 && s != &legacy_stream) run_stream(s);
}

bool capture_forbids(const char* call) {
  if (strict_captures == 0) return false;
  for (CUstream_st* s : streams)
    if (s->capture) s->capture->invalidated = true;
  fail(cudaErrorStreamCaptureUnsupported, std::string(call) + " while a stream is being captured");
  return true;
}

}  // namespace ember::emulator

// ---- copies ---------------------------------------------------------------------------------------
using namespace ember::emulator;

namespace {

Work copy(void* destination, const void* source, std::size_t bytes) {
  return [=] {
    if (bytes > 0) std::memmove(destination, source, bytes);
  };
}

}  // namespace

cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
  if (capture_forbids("cudaMemcpy")) return cudaErrorStreamCaptureUnsupported;
  if (const cudaError_t error = check_copy(destination, source, bytes, kind); error != cudaSuccess) return error;
  return submit(nullptr, copy(destination, source, bytes));
}
cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (const cudaError_t error = check_copy(destination, source, bytes, kind); error != cudaSuccess) return error;
  if (kind == cudaMemcpyDeviceToDevice) return submit(stream, copy(destination, source, bytes));
  // Host memory here is pageable (the emulator has no cudaMallocHost), so, as the CUDA runtime
  // documents: not capturable; from the host, staged at the call; to the host, done on return.
  CUstream_st* s = resolve(stream);
  if (s->capture) {
    s->capture->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "a copy between host and device inside a captured stream");
  }
  if (kind == cudaMemcpyHostToDevice) {
    const auto* first = static_cast<const char*>(source);
    auto staged = std::make_shared<const std::vector<char>>(first, first + bytes);
    return submit(stream, [=] {
      if (bytes > 0) std::memcpy(destination, staged->data(), bytes);
    });
  }
  const cudaError_t error = submit(stream, copy(destination, source, bytes));
  if (error != cudaSuccess) return error;
  run_stream(s);
  return sticky_error;
}
cudaError_t cudaMemsetAsync(void* destination, int value, std::size_t bytes, cudaStream_t stream) {
  if (!is_device_range(destination, bytes)) return fail(cudaErrorInvalidValue, "cudaMemset outside an allocation");
  return submit(stream, [=] { std::memset(destination, value, bytes); });
}

// ---- streams and events ---------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  const cudaError_t created = create_handle(stream, streams, flags);
  queues.push_back((*stream)->queue);
  return created;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == nullptr || streams.count(stream) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy");
  run_stream(stream);  // a GPU finishes a destroyed stream's work
  std::erase(queues, stream->queue);
  return destroy_handle(stream, streams, "cudaStreamDestroy");
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  CUstream_st* s = resolve(stream);
  if (streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize");
  if (s->capture) {
    s->capture->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize on a capturing stream");
  }
  if (s == &legacy_stream) run_blocking_streams();
  run_stream(s);
  return sticky_error;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr) return fail(cudaErrorStreamCaptureUnsupported, "capturing the legacy stream");
  if (stream->capture) return fail(cudaErrorInvalidValue, "the stream is already capturing");
  stream->capture = std::make_shared<Capture>();
  stream->capture->members = {stream};
  stream->capture->mode = mode;
  stream->list = 0;
  stream->joined = true;
  if (mode != cudaStreamCaptureModeRelaxed) ++strict_captures;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (stream == nullptr || !stream->capture || stream->capture->members.front() != stream)
    return fail(cudaErrorInvalidValue, "cudaStreamEndCapture on a stream that did not begin a capture");
  const std::shared_ptr<Capture> capture = stream->capture;
  bool unjoined = false;
  for (CUstream_st* s : capture->members) {
    unjoined = unjoined || (s != stream && !s->joined);
    s->capture.reset();
    s->list = -1;
  }
  if (capture->mode != cudaStreamCaptureModeRelaxed) --strict_captures;
  if (unjoined)
    return fail(cudaErrorStreamCaptureUnjoined, "a stream forked from the capture has work the origin never waited on");
  if (capture->invalidated) return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated");
  *graph = new CUgraph_st{std::make_shared<const CapturedLists>(std::move(capture->lists))};
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  return create_handle(event, events, flags);
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  return destroy_handle(event, events, "cudaEventDestroy");
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  CUstream_st* s = resolve(stream);
  if (events.count(event) == 0 || streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord");
  if (s->capture) {
    *event = CUevent_st{event->flags, nullptr, s->capture->lists[s->list].size(), nullptr, s->capture, s->list};
    return sticky_error;
  }
  auto time = std::make_shared<std::chrono::steady_clock::time_point>();
  const cudaError_t error = submit(s, [time] { *time = std::chrono::steady_clock::now(); });
  *event = CUevent_st{event->flags, s->queue, s->queue->submitted, time, nullptr, -1};
  return error;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  CUstream_st* s = resolve(stream);
  if (events.count(event) == 0 || streams.count(s) == 0)
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent");
  if (!event->capture) {
    if (s->capture)
      return fail(cudaErrorStreamCaptureUnsupported, "a captured stream waiting on an event recorded outside it");
    if (!event->queue) return sticky_error;  // never recorded: nothing to wait for
    if (s == &legacy_stream) {
      run_until(*event->queue, event->position);
      return sticky_error;
    }
    enqueue(*s->queue, wait_item(event->queue, event->position));
    return sticky_error;
  }
  Capture& capture = *event->capture;
  if (s->capture && s->capture != event->capture)
    return fail(cudaErrorStreamCaptureUnsupported, "waiting on an event of another capture");
  if (!s->capture) {  // the stream joins the capture (a fork)
    s->capture = event->capture;
    s->list = static_cast<int>(capture.lists.size());
    capture.lists.emplace_back();
    capture.members.push_back(s);
    s->joined = true;
  }
  capture.lists[s->list].push_back({Work{}, event->list, event->position});
  CUstream_st* recorder = capture.members[event->list];
  if (recorder != s && event->position == capture.lists[event->list].size()) recorder->joined = true;
  return sticky_error;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (events.count(event) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize");
  if (capture_forbids("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
  if (event->queue) run_until(*event->queue, event->position);
  return sticky_error;
}
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  if (events.count(start) == 0 || events.count(end) == 0 || !start->time || !end->time ||
      ((start->flags | end->flags) & cudaEventDisableTiming) != 0)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of events without times");
  if (start->queue->completed < start->position || end->queue->completed < end->position)
    return fail(cudaErrorNotReady, "cudaEventElapsedTime of an event whose work has not run (synchronize first)");
  *milliseconds = std::chrono::duration<float, std::milli>(*end->time - *start->time).count();
  return cudaSuccess;
}

// ---- graphs ---------------------------------------------------------------------------------------
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (graph == nullptr) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate of no graph");
  *exec = new CUgraphExec_st{graph->lists};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return fail(cudaErrorInvalidValue, "cudaGraphLaunch of no graph");
  CUstream_st* s = resolve(stream);
  if (streams.count(s) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaGraphLaunch");
  if (s->capture) return fail(cudaErrorNotSupported, "a graph launch inside a capture (not emulated)");
  if (sticky_error != cudaSuccess) return sticky_error;
  if (s == &legacy_stream) run_blocking_streams();
  // The origin's list goes onto the stream; each other list becomes a branch queue of its own.
  const CapturedLists& lists = *exec->lists;
  const std::size_t base = s->queue->submitted;
  std::vector<std::shared_ptr<Queue>> branches(lists.size());
  branches[0] = s->queue;
  for (std::size_t list = 1; list < lists.size(); ++list) {
    branches[list] = std::make_shared<Queue>();
    queues.push_back(branches[list]);
  }
  for (std::size_t list = 0; list < lists.size(); ++list)
    for (const CapturedItem& item : lists[list]) {
      if (item.list < 0) {
        enqueue(*branches[list], work_item(item.work));
      } else {
        const std::size_t offset = item.list == 0 ? base : 0;
        enqueue(*branches[list], wait_item(branches[item.list], offset + item.position));
      }
    }
  if (s == &legacy_stream) run_stream(s);
  return sticky_error;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;  // launches already queued keep their work
  return cudaSuccess;
}
