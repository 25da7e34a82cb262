#pragma once
// The Keras-like model API:
//
//   ember::Sequential model{ember::Dense(64, ember::Activation::relu), ember::Dropout(0.1f), ember::Dense(1)};
//   model.compile({.optimizer = ember::SGD{.lr = 0.01f}, .loss = ember::MeanSquaredError{}});
//   ember::History history = model.fit(x, y, {.epochs = 100});
//   ember::Matrix prediction = model.predict(x);
//
// Weights are Glorot-uniform and biases zero, as in Keras; one seed gives bit-identical weights on
// every platform. Dense weights are stored (out, in), like PyTorch's Linear.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "ember/activation.hpp"
#include "ember/data.hpp"
#include "ember/device.hpp"
#include "ember/distributed.hpp"
#include "ember/layers.hpp"
#include "ember/losses.hpp"
#include "ember/optimizers.hpp"
#include "ember/preprocessing.hpp"
#include "ember/schedules.hpp"
#include "ember/tensor.hpp"

namespace ember {

struct CompileOptions {
  Optimizer optimizer = SGD{};
  Schedule schedule = ConstantRate{};
  Loss loss = MeanSquaredError{};
  /// Before each update the gradients of all parameters are scaled together by
  /// min(1, clip_norm / (their L2 norm + 1e-6)), as torch.nn.utils.clip_grad_norm_ (Keras'
  /// global_clipnorm), so that a batch of extreme rows cannot throw the weights far; with several
  /// ranks, the summed gradients. 0: off.
  float clip_norm = 0.0f;
  Device device = Device::automatic;
  BackendOptions backend{};
};

/// One epoch's figures. loss and val_loss are the training objective (the loss on the targets the
/// model sees: standardized when normalization is on); for regression mae and val_mae are in
/// original target units and r2 and val_r2 the coefficient of determination averaged over the
/// targets; for classification accuracy and val_accuracy are the share of rows predicted right
/// (the loss is then the log-loss). The training figures are sums over the epoch's steps, each
/// batch measured before its update (as Keras reports them); val_* are set with a validation split.
struct EpochRecord {
  std::int64_t epoch = 0;  // 1-based, counting epochs of earlier fits of this model too
  double loss = 0;
  std::optional<double> mae{}, r2{};  // regression
  std::optional<double> accuracy{};   // classification
  std::optional<double> val_loss{};
  std::optional<double> val_mae{}, val_r2{};
  std::optional<double> val_accuracy{};
  double lr = 0;  // the learning rate of the epoch: the optimizer's times the schedule's factor
  double seconds = 0;
};

/// The figures an epoch record holds, named as Keras names them, in a fixed order: loss, then the
/// task's metrics (mae, r2 or accuracy), then the same for validation (not the lr or seconds).
std::vector<std::pair<std::string, double>> epoch_figures(const EpochRecord& record);
/// Sets the figure epoch_figures names name; false for a name it does not give.
bool set_epoch_figure(EpochRecord& record, const std::string& name, double value);

/// What fit is about to train on, given to FitOptions::on_train_begin.
struct TrainingSummary {
  std::int64_t training_rows = 0;
  std::int64_t validation_rows = 0;
  std::int64_t dropped_rows = 0;  // left out for a missing value (Missing::drop)
  std::int64_t inputs = 0;        // the model's input width (after one-hot expansion)
  std::int64_t outputs = 0;
  std::int64_t parameters = 0;
  std::string backend;
  /// With several ranks: the ranks and where their gradients are summed ("MPI (Open MPI v4.1.4),
  /// 2 ranks; gradients summed by NCCL 2.28.9 in the step's CUDA graph"); empty for one process.
  std::string data_parallel;
  /// With FitOptions::members: which network this is (0 to members - 1) and how many train.
  std::int64_t member = 0;
  std::int64_t members = 1;
  /// The epochs the network had trained before this fit (its first epoch here is the next), and
  /// the epochs this fit runs at most.
  std::int64_t epochs_before = 0;
  std::int64_t epochs = 0;
  /// With FitOptions::compare_linear: this fit trains the linear model compared with the layers,
  /// or a blend's linear model (Sequential::linear_share) on a later fit.
  bool linear = false;
};

/// FitOptions::compare_linear's measure: the mean over each model's networks of the validation
/// loss of the epoch it keeps (infinity for a linear model that diverged), and what the fit kept:
/// the layers (linear_share 0), the linear model (1), or, for a regression where the two losses
/// are within kBlendGap of each other, possibly a blend that predicts (1 - linear_share) times the
/// layers' output plus linear_share times the linear model's, where its validation loss was the
/// lowest.
struct LinearComparison {
  double network_loss = 0;
  double linear_loss = 0;
  /// The shares of the linear model tried (kBlendShares) and each one's validation loss: the mean
  /// over the networks of the loss of the blend on each one's validation rows. Empty where no
  /// blend was tried (classification, losses further apart, a linear model that diverged).
  std::vector<double> shares{}, blend_losses{};
  double linear_share = 0;
  bool kept_linear = false;  // linear_share == 1
  static constexpr double kBlendShares[] = {0.0, 0.25, 0.5, 0.75, 1.0};
  /// Blends are tried where |linear_loss - network_loss| is at most this share of the lower one.
  static constexpr double kBlendGap = 0.02;
};

struct History {
  std::vector<EpochRecord> epochs;
  /// With early stopping: the epoch whose monitored loss was best (the model's state after
  /// fit is that epoch's when EarlyStopping::restore_best).
  std::optional<std::int64_t> best_epoch{};
  /// Why training ended before FitOptions::epochs: "early stopping" or "stop requested"; empty
  /// when every epoch ran.
  std::string stopped{};
  /// With FitOptions::members: the histories of the members after the first, in order (this
  /// History is the first's).
  std::vector<History> members{};
  /// With FitOptions::compare_linear, when the comparison ran (this History is the kept model's).
  std::optional<LinearComparison> linear{};
};

/// Stops training when the validation loss (the training loss without a validation split) has
/// not improved by more than min_delta for patience epochs, as Keras' EarlyStopping; with
/// restore_best (Keras' restore_best_weights) the model ends at its best epoch: its weights,
/// optimizer state and epoch count.
struct EarlyStopping {
  std::int64_t patience = 10;
  double min_delta = 0.0;
  bool restore_best = true;
};

/// Which rows FitOptions::validation_split holds out.
enum class ValidationRows {
  /// A random fraction drawn with the shuffling seed; for classification the same fraction of
  /// every class (stratified), so that a file sorted by its target still validates on all of it.
  random,
  /// The last fraction, as Keras takes it: for rows in time order, to validate on the latest.
  last,
};

/// Rows to validate on instead of a split of the training rows (Keras' validation_data), read
/// during fit and not kept: for a fit on matrices, x and y as fit takes them; for a fit on a table,
/// a table holding the model's feature and target columns, preprocessed as the training rows taught
/// (its rows with a missing target are left out, as in training).
struct ValidationData {
  ConstView x{}, y{};
  const CsvTable* table = nullptr;
};

struct FitOptions {
  std::int64_t epochs = 1;
  std::int64_t batch_size = 32;
  double validation_split = 0.0;  // the fraction of rows held out for validation, before shuffling
  ValidationRows validation_rows = ValidationRows::random;
  /// Validates on these rows rather than on a split (validation_split must be 0); not with
  /// sharded_data.
  std::optional<ValidationData> validation_data{};
  bool shuffle = true;
  std::optional<std::uint64_t> seed{};  // shuffling; default: the model's seed
  bool normalize = true;                // standardize inputs and targets with training-set statistics
  /// A weight per row of x (for a fit on a table, per row of the table), finite and >= 0; empty:
  /// every row weighs 1. Each step minimizes the weighted mean of its rows' losses, sum w_i l_i /
  /// sum w_i, as scikit-learn's MLP (a batch whose weights sum to 0 gives a zero gradient). The
  /// standardization's statistics count each training row its weight's times, as repeating it
  /// would; the epoch's figures and the validation rows are unweighted. With several ranks every
  /// rank gives its rows' weights (all of them, or none), and a step's weighted mean is over the
  /// global batch. On a row-invariant backend (BackendOptions::row_invariant; the reference) the
  /// weights go into the float64 sums over the batch's rows rather than onto each row's loss
  /// gradient: where one batch holds every row, a whole weight then trains the model of as many
  /// copies of the row bit for bit, and the rows' order does not matter (docs/python.md). Read
  /// where it lies: it must outlive fit.
  std::span<const float> sample_weight{};
  std::optional<EarlyStopping> early_stopping{};
  /// Training ends at the end of the batch during which a stop is requested (a callback, a signal
  /// handler's flag), and the model returns to the end of the last completed epoch, so that a later
  /// fit resumes exactly; fit then returns the completed epochs with History::stopped set.
  std::stop_token stop{};
  /// Every this many epochs (0: never) the model is saved to checkpoint_path (atomically, as save),
  /// so that a crash loses at most that many epochs.
  std::int64_t checkpoint_every = 0;
  std::string checkpoint_path{};
  /// Called once the data is checked and the weights built, before the first epoch.
  std::function<void(const TrainingSummary&)> on_train_begin{};
  /// Called after each batch is enqueued with (batch, batches): batch counts from 1 to batches
  /// within the epoch.
  std::function<void(std::int64_t, std::int64_t)> on_batch{};
  /// Called before each epoch with its number (from 1, counting the epochs of earlier fits) and the
  /// learning rate it would train at (the optimizer's lr times the schedule's factor); returns the
  /// rate to train it at (Keras' LearningRateScheduler). The rate must be finite and >= 0; with
  /// several ranks every rank must return the same.
  std::function<double(std::int64_t, double)> on_epoch_begin{};
  /// Called after each epoch, with its figures. The model then holds that epoch's state, so the
  /// callback may read its weights and save it (not predict, evaluate or fit it: fit holds its
  /// backend). An exception from any callback ends fit and leaves the model at the end of the last
  /// completed epoch (the one just reported, for on_epoch_end).
  std::function<void(const EpochRecord&)> on_epoch_end{};
  /// Receives warnings (e.g. a constant column); default prints "warning: ..." to stderr.
  std::function<void(const std::string&)> on_warning{};
  /// Data-parallel training (ember/distributed.hpp): with several ranks, each trains on its slice
  /// of every batch and the gradients are summed, so the ranks take the steps one process with the
  /// same batch_size would. Every rank calls fit with the same data and options; rank 0 alone
  /// writes checkpoint_path. Null or one rank: a single process.
  std::shared_ptr<Communicator> communicator{};
  /// With several ranks: every sum over the ranks (the gradients, the epoch's figures) gathers
  /// each rank's values and adds them in float64 in rank order, so that two runs on the same
  /// ranks are bit-identical whatever order the transport adds in. Sends N times the bytes.
  bool deterministic_reduction = false;
  /// With several ranks: each rank was given other rows (its shard of a file, CsvOptions::shard)
  /// rather than all of them. The column handling, the scaler and the figures then come from every
  /// rank's rows; each rank holds out the validation fraction of its own rows and shuffles its own;
  /// each step takes a slice of the global batch from every rank that has rows left. Trains as one
  /// process on the whole file would, but not bit for bit (docs/distributed.md).
  bool sharded_data = false;
  /// With several ranks: where the gradients are summed (GradientSum::automatic: with NCCL on
  /// GPUs of their own, else on the host).
  GradientSum gradient_sum = GradientSum::automatic;
  /// The networks of the model after fit (1 to kMaxMembers; 0: as many as its earlier fits were
  /// asked for, 1 for a new model). Each is of the model's layers, from the model's seed and the
  /// next ones (seed() + 1, ...), with the first's preprocessing and scaler. With a random
  /// validation split, network k holds out fold k of one draw (validation_split_order): the first
  /// network's rows, then the next rows of every class, so that between them the networks learn
  /// from every row (with 5 networks and a split of 0.2, each row is held out by one of them);
  /// with ValidationRows::last or validation_data they validate on the same rows. Each shuffles
  /// its own order; predict gives the mean of their outputs (the targets,
  /// or the class probabilities): a deep ensemble, whose errors partly cancel (table_defaults gives
  /// a count by the table's size). fit trains the networks one after another: each one the model
  /// has, epochs more, then each one it lacks, from its initial weights to the epoch the first
  /// reaches. The callbacks see each network's fit in turn (TrainingSummary::member says which);
  /// checkpoint_every saves the model between networks, not within them. A stop requested while a
  /// new network trains leaves it out (a later fit trains it again); fewer networks than the model
  /// has are refused.
  std::int64_t members = 0;
  static constexpr std::int64_t kMaxMembers = 64;
  /// On a new model's fit with validation rows (a split or validation_data): then also trains a
  /// linear model of the same inputs and outputs (the last layer alone) with the same options,
  /// members, folds, preprocessing and scaler, and keeps it in place of the layers when the mean
  /// validation loss of its networks (History::linear) is lower: where the target follows the
  /// inputs almost linearly, a network mostly fits the noise. A stop while the linear model
  /// trains keeps the layers. For a regression where the two validate within
  /// LinearComparison::kBlendGap of each other and a blend of them validates lower still, the
  /// model keeps both and predicts the blend (LinearComparison::linear_share,
  /// Sequential::linear_share): the choice between them is then close to a coin flip, which their
  /// mean hedges. Not with embedded columns
  /// (ColumnSpec::embed) or a model of one layer; checkpoint_every saves the kept model.
  bool compare_linear = false;
  /// The optimizer the compared linear model trains with, whatever the layers': by default plain
  /// SGD at its rate, which leaves a linear model closer to its optimum at its best epoch than
  /// momentum's or Adam's larger steps do (docs/performance.md). Its rate is the optimizer's
  /// (the model's schedule still applies), and the model's clip_norm its gradients'.
  Optimizer linear_optimizer = SGD{};
};

/// Options of predict and evaluate.
struct PredictOptions {
  std::int64_t batch_size = 1024;
  /// Receives warnings (e.g. categories training never saw); default prints "warning: ..." to stderr.
  std::function<void(const std::string&)> on_warning{};
};

/// One target column's figures, in original units.
struct TargetMetrics {
  std::string name;  // empty when the model stores no column names
  double mse = 0;
  double mae = 0;
  double r2 = 0;  // as scikit-learn's r2_score; a constant target scores 1 if predicted exactly, else 0
};

/// Regression figures (mse, mae, r2, targets) or classification figures (accuracy onwards), as the
/// model's loss makes it.
struct Metrics {
  double mse = 0;  // mean over all elements, original units
  double mae = 0;
  double r2 = 0;                       // coefficient of determination, averaged over target columns
  double accuracy = 0;                 // share of rows whose most likely class is the label
  double log_loss = 0;                 // mean of -log p(label), as scikit-learn's log_loss
  double macro_f1 = 0;                 // F1 averaged over the classes (a class never true nor predicted: 0)
  std::vector<std::string> classes{};  // names of the classes (class i is row and column i below)
  std::vector<std::vector<std::int64_t>> confusion{};  // confusion[true class][predicted class] = rows
  std::int64_t rows = 0;                               // rows evaluated
  std::int64_t dropped_rows = 0;                       // rows left out for a missing value (Missing::drop)
  std::vector<TargetMetrics> targets;                  // per target column
};

class Plan;
class Backend;

/// Whether this build of Ember writes ONNX files (it was built with libonnx-dev).
bool onnx_export_available();

/// Thread safety: distinct models are independent and may be used from distinct threads at once.
/// One model's const members (predict, evaluate, save, the accessors) may be called from several
/// threads at once: they take turns on the model's backend. Its other members (fit, compile,
/// build, set_*) need exclusive use: no other call on the same model may run meanwhile.
class Sequential {
 public:
  /// InputError unless every layer's settings are valid and the last layer is Dense.
  Sequential(std::initializer_list<Layer> layers, std::uint64_t seed = 0);
  explicit Sequential(std::vector<Layer> layers, std::uint64_t seed = 0);
  ~Sequential();
  Sequential(Sequential&&) noexcept;
  Sequential& operator=(Sequential&&) noexcept;
  /// A deep copy: weights, optimizer state, scaler, preprocessing, options and counts (e.g. a
  /// snapshot of the best model). The copy creates its own backend, on the same device, at first use.
  Sequential(const Sequential& other);
  Sequential& operator=(const Sequential& other);

  void compile(const CompileOptions& options = {});
  /// Trains on x (rows, inputs) and y (rows, outputs), host memory: a Matrix, or a view of data
  /// that lies elsewhere (read in place, never kept). The first call fixes the input width and
  /// initializes the weights from the seed. Throws InputError on bad arguments, DivergenceError
  /// when the loss becomes non-finite: the model then keeps the weights, optimizer state and epoch
  /// count of the last epoch whose loss was finite (or those it had before fit), and the message
  /// names the epoch and the first batch whose loss was not finite.
  History fit(ConstView x, ConstView y, const FitOptions& options = {});
  /// Trains on a table's columns as columns says: targets, ignored and one-hot columns, missing
  /// values. The first such fit learns the preprocessing (categories and fill values from the
  /// training rows, i.e. before the validation split's rows) and keeps it, like the scaler; later
  /// fits must give the same targets, one-hot columns and missing-value policy.
  History fit(const CsvTable& table, const ColumnSpec& columns, const FitOptions& options = {});
  Metrics evaluate(ConstView x, ConstView y, std::int64_t batch_size = 1024) const;
  /// Evaluates on a table's feature and target columns, selected by name and preprocessed as in fit.
  Metrics evaluate(const CsvTable& table, const PredictOptions& options = {}) const;
  /// Regression: the targets, in original units, (rows, outputs). Classification: each class's
  /// probability (rows, classes): the sigmoid of the logit for two classes ([1 - p, p]), else the
  /// softmax of the logits.
  Matrix predict(ConstView x, std::int64_t batch_size = 1024) const;
  /// Classification: the most likely class of each row (ties: the first); InputError for regression.
  std::vector<std::int64_t> predict_classes(ConstView x, std::int64_t batch_size = 1024) const;
  /// Predicts each row of a table from its feature columns, selected by name (other columns are
  /// not read) and preprocessed as in fit. A row left out under Missing::drop predicts NaN. A model
  /// that stores no column names takes every column of the table, in order.
  Matrix predict(const CsvTable& table, const PredictOptions& options = {}) const;
  /// Classification: the most likely class's label for each row of a table (empty for a row left
  /// out under Missing::drop).
  std::vector<std::string> predict_labels(const CsvTable& table, const PredictOptions& options = {}) const;
  /// Classification: the classes' labels (index = class), from the first fit on a table (or
  /// "0", "1", ... for a model trained on matrices); empty for regression.
  std::vector<std::string> classes() const;

  /// The networks whose outputs predict averages: 1, or FitOptions::members after such a fit. The
  /// other accessors (parameters, weight, tensor, epochs_completed, ...) give the first's.
  std::int64_t member_count() const { return 1 + static_cast<std::int64_t>(members_.size()); }
  /// The networks its fits were asked for: above member_count() after a fit stopped before its
  /// last member (a fit with FitOptions::members 0 trains the rest).
  std::int64_t planned_member_count() const { return planned_members_; }
  /// Member k's seed and the figures of the epoch it ended at (k = 0 is the model's own).
  std::uint64_t member_seed(std::int64_t k) const;
  const std::optional<EpochRecord>& member_record(std::int64_t k) const;
  /// Member k's tensor of layer l, as tensor(l, name) gives the first's.
  ConstView member_tensor(std::int64_t k, std::size_t layer, const std::string& name) const;
  /// The linear model's share of a blend (FitOptions::compare_linear): 0 for the layers alone, else
  /// between 0 and 1; predict gives (1 - share) times the layers' output plus share times the
  /// linear model's. Every further fit trains both, the linear model with its own optimizer.
  double linear_share() const { return linear_share_; }
  /// A blend's linear model (its last layer alone, with the model's preprocessing, scaler and
  /// members); InputError for a model without one.
  const Sequential& blended_linear() const;

  /// Writes a safetensors checkpoint (docs/formats.md) through a temporary file and a rename.
  void save(const std::string& path) const;
  /// Reads a checkpoint written by save(); throws InputError on any inconsistency.
  static Sequential load(const std::string& path);
  /// Writes the model as one ONNX graph (docs/deploying.md), through a temporary file and a rename:
  /// from the raw feature columns (one input per column, named after it: numbers as float, NaN for a
  /// missing cell; categories as text) through the learned preprocessing and the layers to what
  /// `ember predict` gives: "predictions" in the targets' units, or "label" and "probabilities".
  /// A model trained on matrices takes one float input "input". InputError for a model not built
  /// or a build without ONNX (onnx_export_available()).
  void export_onnx(const std::string& path) const;

  // ---- inspection ------------------------------------------------------------------------------
  const std::vector<Layer>& layers() const { return layers_; }
  std::int64_t input_width() const { return input_width_; }  // 0 until built
  std::int64_t output_width() const { return std::get<Dense>(layers_.back()).units; }
  bool built() const { return input_width_ > 0; }
  /// Allocates and initializes the weights for this input width (fit does it on first use).
  void build(std::int64_t input_width);
  /// The number of parameters build(input_width) allocates; InputError when a width is out of
  /// range (1 to 2^31 - 1: the kernels index a layer with 32-bit integers) or the count overflows.
  std::int64_t parameter_count_for(std::int64_t input_width) const;
  /// All parameters in one flat buffer: per Dense layer its weight (out, in), then its bias (out).
  const std::vector<float>& parameters() const { return parameters_; }
  /// The optimizer's state buffers one after another (optimizer_state_names order), each of the
  /// parameters' layout: SGD's momentum buffer, Adam's exp_avg and exp_avg_sq; empty for plain SGD.
  const std::vector<float>& optimizer_state() const { return optimizer_state_; }
  /// Updates made so far by the optimizer whose state this is (Adam's bias-correction step t).
  std::int32_t optimizer_step() const { return optimizer_step_; }
  /// The schedule's state (ReduceOnPlateau's current factor and its bookkeeping).
  const ScheduleState& schedule_state() const { return schedule_state_; }
  std::int64_t parameter_count() const { return static_cast<std::int64_t>(parameters_.size()); }
  /// Layer l's parameters (0 for a Dropout layer), as Keras' layer.count_params(); InputError for a
  /// model not built or a layer it does not have.
  std::int64_t parameter_count(std::size_t layer) const;
  const Scaler& scaler() const { return scaler_; }
  const CompileOptions& compile_options() const { return options_; }
  std::int64_t epochs_completed() const { return epochs_completed_; }
  /// The figures of the epoch the model is at (its loss and metrics, the validation's, its rate),
  /// from the last fit or the checkpoint; none before the first epoch.
  const std::optional<EpochRecord>& epoch_record() const { return epoch_record_; }
  std::uint64_t seed() const { return seed_; }
  /// Names the numeric feature and target columns of a model trained on matrices, so that its
  /// checkpoint can predict from a table by column name. InputError when a built model's input
  /// width differs from features.size().
  void set_column_names(std::vector<std::string> features, std::vector<std::string> targets);
  /// Names the classes of a classification model trained on matrices of class indices: class i is
  /// labels[i], which classes(), predict_labels, checkpoints and ONNX export then give. InputError
  /// unless the loss is CrossEntropy and the labels are class_count() distinct ones.
  void set_classes(std::vector<std::string> labels);
  /// What the first fit on a table learned of its columns (empty for a model trained on matrices).
  const Preprocessing& preprocessing() const { return preprocessing_; }
  std::vector<std::string> feature_names() const { return preprocessing_.feature_names(); }
  const std::vector<std::string>& target_names() const { return preprocessing_.targets; }
  /// Name of the backend last used ("cpu", "cuda:0 (...)"), empty before.
  const std::string& backend_name() const { return runtime_.name; }
  /// Why Device::automatic fell back to the CPU, empty otherwise (set by compile).
  const std::string& backend_notice() const { return runtime_.notice; }
  /// Offset of layer l's weight and bias in parameters().
  std::int64_t weight_offset(std::size_t layer) const;
  std::int64_t bias_offset(std::size_t layer) const;
  /// Layer l's weight and bias as PyTorch names them: a Dense layer's weight (out, in), as
  /// torch.nn.Linear's, and bias (1, out); a LayerNorm's scale and shift, (1, width) each. Views
  /// into parameters(), valid until the model is built, loaded or assigned again. InputError for a
  /// model not built, a layer it does not have or one without parameters (Dropout). l counts every layer.
  ConstView weight(std::size_t layer) const;
  ConstView bias(std::size_t layer) const;
  /// Sets them: InputError unless the shape is the layer's and every value is finite. The
  /// optimizer state is kept (set it apart from training, or train from here as from any weights).
  void set_weight(std::size_t layer, const Matrix& weight);
  void set_bias(std::size_t layer, const Matrix& bias);
  /// Layer l's tensors in its order, named as the checkpoint names them after "layers.{l}.": a
  /// Dense layer's "weight", "bias"; a BatchNorm's "weight", "bias", "running_mean", "running_var".
  std::vector<std::string> tensor_names(std::size_t layer) const;
  /// Layer l's tensor of that name, as weight() gives it ((rows, cols), or (1, n) for a vector);
  /// InputError as weight() does, or for a name the layer lacks.
  ConstView tensor(std::size_t layer, const std::string& name) const;
  /// Sets it: InputError unless the shape is the tensor's and every value is finite.
  void set_tensor(std::size_t layer, const std::string& name, const Matrix& values);

 private:
  friend class CheckpointIo;
  friend class FitLoop;
  /// compile() without the backend: checks and keeps the options (InputError when they are bad).
  void set_options(const CompileOptions& options);
  /// The backend, created from the compiled options at first use; the caller holds runtime_.mutex.
  Backend& backend() const;
  /// The outputs for x of the network of these parameters (the model's or a member's),
  /// standardized a batch at a time (no copy of the whole input).
  Matrix predict_rows(Backend& backend, ConstView x, std::int64_t batch_size,
                      const std::vector<float>& parameters) const;
  /// The mean of the networks' outputs for x (targets, or class probabilities), on runner's
  /// backend (the model's own, or a blend's whose linear model this is).
  Matrix mean_output(const Sequential& runner, ConstView x, std::int64_t batch_size) const;
  /// A regression's validation loss of each blend of this model's networks (1 - share) and
  /// linear's (share), the mean over the networks of its loss on their validation rows
  /// (keep_validation_rows_), over
  /// every rank's rows where ranks is given; empty where the networks kept no row.
  std::vector<double> blend_losses(const Sequential& linear, const std::vector<double>& shares,
                                   Communicator* ranks) const;
  /// Trains this model through train with part (members_ or linear_) set aside, so that the fit
  /// sees its one network; part is back in place after it, also when it throws.
  History train_without(std::vector<Sequential> Sequential::*part,
                        const std::function<History(Sequential&, const FitOptions&)>& train, const FitOptions& options);
  /// FitOptions::members > 1: trains this model, then each further member through train.
  History fit_members(const FitOptions& options, const std::function<History(Sequential&, const FitOptions&)>& train);
  /// FitOptions::compare_linear: trains this model, then a linear one through train, and keeps the
  /// better or their blend; a blend's further fits train both.
  History fit_comparing(const FitOptions& options, const std::function<History(Sequential&, const FitOptions&)>& train);
  /// split_done: the validation rows are already the last ones (fit on a table drew them), and
  /// held_out of them where given (FitOptions::validation_data), else as validation_split says.
  /// weights: one per row of x (FitOptions::sample_weight, in x's order), or empty.
  History fit_matrices(ConstView x, ConstView y, const FitOptions& options, std::int64_t dropped_rows,
                       bool split_done = false, std::optional<std::int64_t> held_out = std::nullopt,
                       std::vector<float> weights = {});
  /// InputError when training at batch_size cannot fit in the backend's memory.
  void check_memory(std::int64_t input_width, std::int64_t batch_size) const;
  Preprocessing table_preprocessing(const CsvTable& table) const;
  /// InputError unless y suits the loss: (rows, outputs) finite numbers for regression, (rows, 1)
  /// class indices below class_count() for classification.
  void check_targets(ConstView y) const;
  std::int64_t class_count() const;  // classification: 2 for one output, else the outputs

  std::vector<Layer> layers_;
  std::uint64_t seed_ = 0;
  std::int64_t input_width_ = 0;
  std::vector<float> parameters_;
  std::vector<float> optimizer_state_;
  std::int32_t optimizer_step_ = 0;
  ScheduleState schedule_state_;
  Scaler scaler_;
  CompileOptions options_;
  bool compiled_ = false;
  std::int64_t epochs_completed_ = 0;
  std::optional<EpochRecord> epoch_record_;
  Preprocessing preprocessing_;
  bool scaler_fitted_ = false;  // the scaler is fixed by the first fit and kept (also through save/load)
  /// The networks after the first of an ensemble (FitOptions::members): the same layers, options,
  /// scaler and preprocessing; their own seed, weights, optimizer and schedule state and epochs.
  std::vector<Sequential> members_;
  /// The members its fits were asked for (FitOptions::members), which an interrupted fit may not
  /// have reached: a later fit with FitOptions::members 0 trains the rest.
  std::int64_t planned_members_ = 1;
  /// Member k of an ensemble: k, its validation fold and from which its shuffling seed is derived.
  std::uint64_t member_index_ = 0;
  /// A blend's linear model (none or one) and its share (FitOptions::compare_linear).
  std::vector<Sequential> linear_;
  double linear_share_ = 0;
  /// While fit_comparing trains: each network keeps the rows it validated on (inputs as given,
  /// targets), from which the blends' losses are measured.
  bool keep_validation_rows_ = false;
  Matrix validation_x_, validation_y_;
  /// The model's backend and what compile said of it. A copied model gets none (it creates its
  /// own at first use). The mutex lets one caller at a time use the backend: const members may be
  /// called from several threads at once.
  struct Runtime {
    std::unique_ptr<Backend> backend;
    std::string name, notice;
    std::mutex mutex;
    Runtime();
    ~Runtime();
    Runtime(const Runtime&);
    Runtime& operator=(const Runtime&);
    Runtime(Runtime&& other) noexcept;
    Runtime& operator=(Runtime&& other) noexcept;
  };
  mutable Runtime runtime_;
};

}  // namespace ember
