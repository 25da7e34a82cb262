// A downstream program built against an installed Ember: the seed example on the CPU, and a model
// trained on a table with an id, a category and a gap, saved, loaded and predicting raw rows.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>
#include <string>

int main() {
  const double prediction = ember::demo::seed_example(ember::Device::cpu);
  std::printf("consumer: predict(5) = %.4f\n", prediction);
  if (std::abs(prediction - 5.0) >= 0.1) return 1;

  std::string text = "id,city,x,y\n";
  for (int i = 0; i < 30; ++i)
    text += "c" + std::to_string(i) + (i % 2 ? ",Lyon," : ",Paris,") + (i % 5 ? std::to_string(i) : "NA") + "," +
            std::to_string(i + 10 * (i % 2)) + "\n";
  ember::Sequential model{ember::Dense(4, ember::Activation::relu), ember::Dense(1)};
  model.compile({.device = ember::Device::cpu});
  model.fit(ember::parse_csv(text, "consumer.csv"),
            {.targets = {"y"}, .ignore = {"id"}, .one_hot = {"city"}, .missing = ember::Missing::mean}, {.epochs = 5});
  model.save("consumer.safetensors");
  ember::Sequential loaded = ember::Sequential::load("consumer.safetensors");
  const ember::CsvTable rows =
      ember::parse_csv("x,city\n3,Lyon\nNA,Paris\n", "rows.csv", loaded.preprocessing().csv_options());
  const bool same = loaded.predict(rows) == model.predict(rows);
  std::printf("consumer: table model reloaded, predictions %s\n", same ? "identical" : "DIFFER");
  return same ? 0 : 1;
}
