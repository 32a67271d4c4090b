#include "lm/lora.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "codec/atomic_file.h"
#include "weights/json_config.h"
#include "weights/safetensors.h"
#include "weights/safetensors_writer.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

struct ModuleInfo {
  LoraModule module;
  const char* name;
  bool cross;
};

const ModuleInfo kModules[] = {
    {LoraModule::SelfQ, "self_attn.q_proj", false},     {LoraModule::SelfK, "self_attn.k_proj", false},
    {LoraModule::SelfV, "self_attn.v_proj", false},     {LoraModule::SelfO, "self_attn.out_proj", false},
    {LoraModule::CrossQ, "encoder_attn.q_proj", true},  {LoraModule::CrossK, "encoder_attn.k_proj", true},
    {LoraModule::CrossV, "encoder_attn.v_proj", true},  {LoraModule::CrossO, "encoder_attn.out_proj", true},
    {LoraModule::Fc1, "fc1", false},                    {LoraModule::Fc2, "fc2", false},
};

const ModuleInfo& info_of(LoraModule m) { return kModules[int(m)]; }

std::string known_module_names() {
  std::string s;
  for (const ModuleInfo& i : kModules) s += (s.empty() ? "" : ", ") + std::string(i.name);
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PEFT's rule for a target_modules entry: the module's key equals it or ends with "." + entry.
// Our keys end with "layers.<l>.<name>", so an entry matches a module when one is a dotted suffix of
// the other ("q_proj" -> both q projections; "decoder.layers.3.fc1" -> fc1, the layer is the
// tensors' business).
std::vector<LoraModule> modules_matching(const std::string& entry) {
  std::vector<LoraModule> out;
  for (const ModuleInfo& i : kModules) {
    const std::string name = i.name;
    if (entry == name || ends_with("." + name, "." + entry) || ends_with(entry, "." + name)) out.push_back(i.module);
  }
  return out;
}

const std::string kAdapterConfig = "adapter_config.json";
const std::string kAdapterWeights = "adapter_model.safetensors";
const char* const kSignatureKey = "musicgen.base_model";

void write_file_atomically(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write_all(bytes.data(), bytes.size());
  f.commit();
}

// "layers.<l>.<module>.lora_<A|B>.weight" after the layout's prefix -> (l, module, is_A).
struct ParsedName {
  int layer = 0;
  LoraModule module = LoraModule::SelfQ;
  bool is_a = true;
};

bool parse_tensor_name(const std::string& name, PeftLayout& layout, ParsedName& out) {
  std::string rest;
  bool found = false;
  for (PeftLayout l : {PeftLayout::ConditionalGeneration, PeftLayout::CausalLM}) {
    const std::string p = peft_layer_prefix(l);
    if (name.compare(0, p.size(), p) == 0) {
      rest = name.substr(p.size());
      layout = l;
      found = true;
    }
  }
  if (!found) return false;
  const size_t dot = rest.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 6) return false;
  for (size_t i = 0; i < dot; ++i)
    if (rest[i] < '0' || rest[i] > '9') return false;
  out.layer = std::stoi(rest.substr(0, dot));
  rest = rest.substr(dot + 1);
  for (const char* suffix : {".lora_A.weight", ".lora_B.weight"}) {
    if (!ends_with(rest, suffix)) continue;
    const std::string module = rest.substr(0, rest.size() - std::strlen(suffix));
    for (const ModuleInfo& i : kModules)
      if (module == i.name) {
        out.module = i.module;
        out.is_a = suffix[6] == 'A';
        return true;
      }
  }
  return false;
}

std::string tensor_name(PeftLayout layout, int layer, LoraModule m, bool is_a) {
  return std::string(peft_layer_prefix(layout)) + std::to_string(layer) + "." + lora_module_name(m) +
         (is_a ? ".lora_A.weight" : ".lora_B.weight");
}

// Refuses the adapter_config.json fields whose maths this library does not implement.
void refuse_unsupported(const JsonConfig& c) {
  const std::string where = " in " + c.source() + ": ";
  MG_CHECK(!c.opt<bool>("use_rslora", false), "use_rslora is true", where,
           "rank-stabilised LoRA (scale alpha/sqrt(r)) is not supported; use an adapter trained without it");
  MG_CHECK(!c.opt<bool>("use_dora", false), "use_dora is true", where,
           "DoRA adapters are not supported; use a plain LoRA adapter");
  MG_CHECK(!c.opt<bool>("fan_in_fan_out", false), "fan_in_fan_out is true", where,
           "MusicGen's projections are nn.Linear; an adapter with transposed weights was made for another model");
  const std::string bias = c.opt<std::string>("bias", "none");
  MG_CHECK(bias == "none", "bias is '", bias, "'", where, "only bias \"none\" is supported (no trained biases)");
  MG_CHECK(!c.opt<bool>("lora_bias", false), "lora_bias is true", where, "LoRA biases are not supported");
  if (c.has("modules_to_save")) {
    const nlohmann::json& m = c.json().at("modules_to_save");
    MG_CHECK(!m.is_array() || m.empty(), "modules_to_save is set", where,
             "fully trained extra modules are not supported; only lora_A/lora_B weights are read");
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (!c.has(key)) continue;
    const nlohmann::json& p = c.json().at(key);
    MG_CHECK(!p.is_object() || p.empty(), key, " is not empty", where,
             "per-module ranks or alphas are not supported; use one r and one lora_alpha");
  }
}

std::vector<LoraModule> targets_from_config(const JsonConfig& c) {
  MG_CHECK(c.has("target_modules"), "missing 'target_modules' in ", c.source(), ": not a LoRA adapter config");
  const nlohmann::json& t = c.json().at("target_modules");
  std::set<LoraModule> found;
  if (t.is_string()) return {};  // a regular expression: the tensors say which modules it took
  MG_CHECK(t.is_array(), "'target_modules' in ", c.source(), " must be a list of module names or a string");
  for (const nlohmann::json& e : t) {
    MG_CHECK(e.is_string(), "'target_modules' in ", c.source(), " must hold strings");
    const std::vector<LoraModule> ms = modules_matching(e.get<std::string>());
    MG_CHECK(!ms.empty(), "unknown target module '", e.get<std::string>(), "' in ", c.source(),
             ": a MusicGen adapter may target the decoder layers' ", known_module_names());
    found.insert(ms.begin(), ms.end());
  }
  return std::vector<LoraModule>(found.begin(), found.end());
}

// A float as the shortest decimal that reads back as it (0.05f -> 0.05, as Python writes it).
double short_decimal(float v) {
  for (int digits = 1; digits < 10; ++digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(v));
    const double d = std::strtod(buf, nullptr);
    if (float(d) == v) return d;
  }
  return double(v);
}

// A deterministic uniform float in [lo, hi) (same numbers on every platform, unlike
// std::uniform_real_distribution).
float uniform(std::mt19937_64& rng, float lo, float hi) {
  const double u = double(rng() >> 11) * (1.0 / 9007199254740992.0);
  return float(lo + (hi - lo) * u);
}

}  // namespace

const std::vector<LoraModule>& all_lora_modules() {
  static const std::vector<LoraModule> all = [] {
    std::vector<LoraModule> v;
    for (const ModuleInfo& i : kModules) v.push_back(i.module);
    return v;
  }();
  return all;
}

const char* lora_module_name(LoraModule m) { return info_of(m).name; }
bool lora_module_is_cross(LoraModule m) { return info_of(m).cross; }

LoraModule lora_module_from_name(const std::string& name) {
  for (const ModuleInfo& i : kModules)
    if (name == i.name) return i.module;
  throw Error("unknown LoRA module '" + name + "': a MusicGen adapter may target the decoder layers' " +
              known_module_names());
}

Shape lora_module_shape(LoraModule m, const MusicgenDecoderConfig& cfg) {
  const int64_t D = cfg.hidden_size, F = cfg.ffn_dim;
  if (m == LoraModule::Fc1) return {F, D};
  if (m == LoraModule::Fc2) return {D, F};
  return {D, D};
}

std::vector<LoraModule> parse_lora_targets(const std::string& list) {
  static const std::map<std::string, std::vector<LoraModule>> words = {
      {"q", {LoraModule::SelfQ}},
      {"k", {LoraModule::SelfK}},
      {"v", {LoraModule::SelfV}},
      {"o", {LoraModule::SelfO}},
      {"cross", {LoraModule::CrossQ, LoraModule::CrossK, LoraModule::CrossV, LoraModule::CrossO}},
      {"ffn", {LoraModule::Fc1, LoraModule::Fc2}},
      {"all", all_lora_modules()},
  };
  std::set<LoraModule> chosen;
  std::stringstream ss(list);
  std::string word;
  bool any = false;
  while (std::getline(ss, word, ',')) {
    auto it = words.find(word);
    MG_CHECK(it != words.end(), "--targets: unknown target '", word, "' in '", list,
             "'; use a comma-separated list of q, k, v, o (self-attention), cross (cross-attention q, k, v, o), "
             "ffn (fc1, fc2) or all");
    chosen.insert(it->second.begin(), it->second.end());
    any = true;
  }
  MG_CHECK(any && (list.empty() || list.back() != ','), "--targets: '", list,
           "' names no target; use e.g. q,v or q,k,v,o,cross,ffn");
  return std::vector<LoraModule>(chosen.begin(), chosen.end());
}

const char* peft_layer_prefix(PeftLayout layout) {
  return layout == PeftLayout::CausalLM ? "base_model.model.model.decoder.layers."
                                        : "base_model.model.decoder.model.decoder.layers.";
}

const LoraWeights* LoraAdapter::find(int layer, LoraModule module) const {
  for (const LoraWeights& w : weights)
    if (w.layer == layer && w.module == module) return &w;
  return nullptr;
}

LoraWeights* LoraAdapter::find(int layer, LoraModule module) {
  return const_cast<LoraWeights*>(static_cast<const LoraAdapter*>(this)->find(layer, module));
}

static void check_config(const LoraConfig& c, const std::string& where) {
  MG_CHECK(c.r >= 1 && c.r <= 65536, where, ": LoRA rank r must be in [1, 65536], found ", c.r);
  MG_CHECK(std::isfinite(c.lora_alpha) && c.lora_alpha > 0, where, ": lora_alpha must be a positive number, found ",
           c.lora_alpha);
  MG_CHECK(c.lora_dropout >= 0 && c.lora_dropout < 1, where, ": lora_dropout must be in [0, 1), found ",
           c.lora_dropout);
}

std::string lora_model_signature(const MusicgenDecoderConfig& m, bool cross_attention) {
  std::ostringstream s;
  s << "layers=" << m.num_hidden_layers << " hidden=" << m.hidden_size << " ffn=" << m.ffn_dim
    << " heads=" << m.num_attention_heads << " codebooks=" << m.num_codebooks << " channels=" << m.audio_channels
    << " vocab=" << m.vocab_size << " cross=" << (cross_attention ? 1 : 0);
  return s.str();
}

LoraAdapter init_lora_adapter(const LoraConfig& config, const MusicgenDecoderConfig& model, bool cross_attention,
                              uint64_t seed) {
  check_config(config, "init_lora_adapter");
  MG_CHECK(!config.targets.empty(), "init_lora_adapter: no target modules (use e.g. --targets q,v)");
  LoraAdapter a;
  a.config = config;
  a.config.base_model_signature = lora_model_signature(model, cross_attention);
  std::sort(a.config.targets.begin(), a.config.targets.end());
  a.config.targets.erase(std::unique(a.config.targets.begin(), a.config.targets.end()), a.config.targets.end());
  std::mt19937_64 rng(seed);
  for (int l = 0; l < model.num_hidden_layers; ++l) {
    for (LoraModule m : a.config.targets) {
      MG_CHECK(cross_attention || !lora_module_is_cross(m), "LoRA target ", lora_module_name(m),
               ": this model has no cross-attention (a melody model); leave 'cross' out of the targets");
      const Shape s = lora_module_shape(m, model);
      LoraWeights w;
      w.layer = l;
      w.module = m;
      w.A = Tensor::empty(DType::F32, {config.r, s[1]});
      const float bound = 1.0f / std::sqrt(float(s[1]));
      float* pa = w.A.f32();
      for (int64_t i = 0; i < w.A.numel(); ++i) pa[i] = uniform(rng, -bound, bound);
      w.B = Tensor::zeros(DType::F32, {s[0], config.r});
      a.weights.push_back(std::move(w));
    }
  }
  return a;
}

void check_lora_adapter(const LoraAdapter& adapter, const MusicgenDecoderConfig& model, bool cross_attention) {
  const PeftLayout layout = adapter.config.layout;
  const std::string signature = lora_model_signature(model, cross_attention);
  MG_CHECK(adapter.config.base_model_signature.empty() || adapter.config.base_model_signature == signature,
           "the LoRA adapter was made for another model: its base model has (", adapter.config.base_model_signature,
           "), this one (", signature, "); load it with the model it was trained on (",
           adapter.config.base_model_name_or_path.empty() ? "see its adapter_config.json"
                                                          : adapter.config.base_model_name_or_path,
           ")");
  for (const LoraWeights& w : adapter.weights) {
    const std::string a_name = tensor_name(layout, w.layer, w.module, true);
    MG_CHECK(w.layer >= 0 && w.layer < model.num_hidden_layers, "LoRA tensor ", a_name, " is for decoder layer ",
             w.layer, " but the model has ", model.num_hidden_layers,
             " layers: the adapter was made for another model (check its base_model_name_or_path)");
    MG_CHECK(cross_attention || !lora_module_is_cross(w.module), "LoRA tensor ", a_name,
             " adapts cross-attention, which this model (a melody model) does not have: the adapter was made for "
             "another model");
    const Shape s = lora_module_shape(w.module, model);
    const int64_t r = adapter.config.r;
    MG_CHECK(w.A.shape == Shape({r, s[1]}), "LoRA tensor ", a_name, " has shape ", shape_str(w.A.shape),
             ", the model needs ", shape_str({r, s[1]}), ": the adapter was made for another model");
    MG_CHECK(w.B.shape == Shape({s[0], r}), "LoRA tensor ", tensor_name(layout, w.layer, w.module, false),
             " has shape ", shape_str(w.B.shape), ", the model needs ", shape_str({s[0], r}),
             ": the adapter was made for another model");
  }
}

LoraAdapter load_peft_adapter(const std::string& dir) {
  MG_CHECK(fs::is_directory(dir), "LoRA adapter folder '", dir,
           "' does not exist or is not a folder (it must hold adapter_config.json and adapter_model.safetensors)");
  const std::string config_path = (fs::path(dir) / kAdapterConfig).string();
  const std::string weights_path = (fs::path(dir) / kAdapterWeights).string();
  MG_CHECK(fs::exists(config_path), "LoRA adapter folder '", dir, "' has no ", kAdapterConfig,
           " (a PEFT adapter saved with save_pretrained has one)");
  MG_CHECK(fs::exists(weights_path), "LoRA adapter folder '", dir, "' has no ", kAdapterWeights,
           (fs::exists(fs::path(dir) / "adapter_model.bin")
                ? " (only adapter_model.bin, a pickle: save it again with save_pretrained(safe_serialization=True))"
                : " (a PEFT adapter saved with save_pretrained has one)"));
  const JsonConfig c = JsonConfig::load(config_path);
  const std::string type = c.req<std::string>("peft_type");
  MG_CHECK(type == "LORA", "peft_type is '", type, "' in ", config_path, ": only LoRA adapters (LORA) are supported");
  refuse_unsupported(c);

  LoraAdapter a;
  a.config.r = c.req_in<int>("r", 1, 65536);
  a.config.lora_alpha = float(c.opt_in<double>("lora_alpha", 8.0, 1e-30, 1e30));
  a.config.lora_dropout = float(c.opt_in<double>("lora_dropout", 0.0, 0.0, 0.999999));
  a.config.base_model_name_or_path = c.opt<std::string>("base_model_name_or_path", "");
  const std::vector<LoraModule> declared = targets_from_config(c);

  const auto file = SafeTensorsFile::open(weights_path);
  std::map<std::pair<int, LoraModule>, LoraWeights> by_key;
  std::set<PeftLayout> layouts;
  for (const std::string& name : file->names()) {
    ParsedName p;
    PeftLayout layout;
    MG_CHECK(parse_tensor_name(name, layout, p), "tensor '", name, "' in ", weights_path,
             " is not a LoRA weight of a MusicGen decoder layer (expected ",
             peft_layer_prefix(PeftLayout::ConditionalGeneration), "<layer>.<module>.lora_A.weight / lora_B.weight, ",
             "module one of ", known_module_names(), ")");
    layouts.insert(layout);
    LoraWeights& w = by_key[{p.layer, p.module}];
    w.layer = p.layer;
    w.module = p.module;
    const Tensor t = file->get(name);
    MG_CHECK(t.ndim() == 2, "tensor '", name, "' in ", weights_path, " has shape ", shape_str(t.shape),
             ", a LoRA matrix is 2-D");
    (p.is_a ? w.A : w.B) = t.as_f32().clone();
  }
  MG_CHECK(!by_key.empty(), weights_path, " holds no LoRA tensors");
  MG_CHECK(layouts.size() == 1, weights_path, " mixes the tensor names of two HF classes (",
           peft_layer_prefix(PeftLayout::ConditionalGeneration), " and ", peft_layer_prefix(PeftLayout::CausalLM), ")");
  a.config.layout = *layouts.begin();
  auto sig = file->metadata().find(kSignatureKey);
  if (sig != file->metadata().end()) a.config.base_model_signature = sig->second;
  std::set<LoraModule> present;
  for (auto& [key, w] : by_key) {
    const std::string a_name = tensor_name(a.config.layout, w.layer, w.module, true);
    const std::string b_name = tensor_name(a.config.layout, w.layer, w.module, false);
    MG_CHECK(w.A.defined() && w.B.defined(), weights_path, ": ", w.A.defined() ? a_name : b_name, " has no matching ",
             w.A.defined() ? b_name : a_name);
    MG_CHECK(w.A.dim(0) == a.config.r && w.B.dim(1) == w.A.dim(0), weights_path, ": ", a_name, " ",
             shape_str(w.A.shape), " and ", b_name, " ", shape_str(w.B.shape), " do not have the rank r = ",
             a.config.r, " of ", config_path);
    present.insert(w.module);
    a.weights.push_back(std::move(w));
  }
  for (LoraModule m : present)
    MG_CHECK(declared.empty() || std::find(declared.begin(), declared.end(), m) != declared.end(), weights_path,
             " has weights for ", lora_module_name(m), ", which target_modules in ", config_path, " does not list");
  a.config.targets.assign(present.begin(), present.end());
  std::sort(a.weights.begin(), a.weights.end(), [](const LoraWeights& x, const LoraWeights& y) {
    return std::make_pair(x.layer, int(x.module)) < std::make_pair(y.layer, int(y.module));
  });
  return a;
}

void save_peft_adapter(const std::string& dir, const LoraAdapter& adapter) {
  check_config(adapter.config, "save_peft_adapter");
  MG_CHECK(!adapter.weights.empty(), "save_peft_adapter: the adapter has no weights");
  std::error_code ec;
  fs::create_directories(dir, ec);
  MG_CHECK(fs::is_directory(dir), "cannot create the adapter folder '", dir, "': ", ec ? ec.message() : "not a folder");

  std::vector<std::pair<std::string, Tensor>> tensors;
  std::set<LoraModule> modules;
  for (const LoraWeights& w : adapter.weights) {
    MG_CHECK(w.A.defined() && w.B.defined() && w.A.ndim() == 2 && w.B.ndim() == 2 && w.A.dim(0) == adapter.config.r &&
                 w.B.dim(1) == adapter.config.r,
             "save_peft_adapter: layer ", w.layer, " ", lora_module_name(w.module), ": A ", shape_str(w.A.shape),
             " and B ", shape_str(w.B.shape), " must be [r, in] and [out, r] with r = ", adapter.config.r);
    tensors.push_back({tensor_name(adapter.config.layout, w.layer, w.module, true), w.A.as_f32()});
    tensors.push_back({tensor_name(adapter.config.layout, w.layer, w.module, false), w.B.as_f32()});
    modules.insert(w.module);
  }
  std::vector<std::string> target_names;
  for (LoraModule m : modules) target_names.push_back(lora_module_name(m));
  const bool causal = adapter.config.layout == PeftLayout::CausalLM;
  const nlohmann::json null;
  // The fields of a plain LoRA adapter that PEFT has read since 0.9 (use_dora), with its defaults:
  // newer PEFT versions fill the fields they added, older ones would refuse keys they do not know.
  nlohmann::json cfg = {
      {"alpha_pattern", nlohmann::json::object()},
      {"auto_mapping",
       {{"base_model_class", causal ? "MusicgenForCausalLM" : "MusicgenForConditionalGeneration"},
        {"parent_library", "transformers.models.musicgen.modeling_musicgen"}}},
      {"base_model_name_or_path", adapter.config.base_model_name_or_path},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layers_pattern", null},
      {"layers_to_transform", null},
      {"lora_alpha", short_decimal(adapter.config.lora_alpha)},
      {"lora_dropout", short_decimal(adapter.config.lora_dropout)},
      {"modules_to_save", null},
      {"peft_type", "LORA"},
      {"r", adapter.config.r},
      {"rank_pattern", nlohmann::json::object()},
      {"revision", null},
      {"target_modules", target_names},
      {"task_type", null},
      {"use_dora", false},
      {"use_rslora", false},
  };
  // lora_alpha is an integer in PEFT's files when it is one.
  if (adapter.config.lora_alpha == std::floor(adapter.config.lora_alpha) && adapter.config.lora_alpha < 1e9)
    cfg["lora_alpha"] = int64_t(adapter.config.lora_alpha);
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (!adapter.config.base_model_signature.empty()) metadata[kSignatureKey] = adapter.config.base_model_signature;
  write_file_atomically((fs::path(dir) / kAdapterWeights).string(), safetensors_bytes(tensors, metadata));
  write_file_atomically((fs::path(dir) / kAdapterConfig).string(), cfg.dump(2) + "\n");
}

Tensor merge_lora_weight(const Tensor& W, const LoraWeights& lw, float scale) {
  MG_CHECK(W.device == Device::CPU && W.ndim() == 2, "merge_lora_weight: the base weight must be a 2-D host tensor");
  const int64_t out = W.dim(0), in = W.dim(1), r = lw.A.dim(0);
  MG_CHECK(lw.A.shape == Shape({r, in}) && lw.B.shape == Shape({out, r}), "LoRA layer ", lw.layer, " ",
           lora_module_name(lw.module), ": A ", shape_str(lw.A.shape), " and B ", shape_str(lw.B.shape),
           " do not fit the model's weight ", shape_str(W.shape), ": the adapter was made for another model");
  // As PEFT's merge: delta = (B @ A) * scaling in f32, then W + delta.
  Tensor merged = W.dtype == DType::F32 ? W.clone() : W.as_f32();
  const float* A = lw.A.f32();
  const float* B = lw.B.f32();
  float* M = merged.f32();
  std::vector<float> delta(in);
  for (int64_t o = 0; o < out; ++o) {
    std::fill(delta.begin(), delta.end(), 0.0f);
    for (int64_t k = 0; k < r; ++k) {
      const float b = B[o * r + k];
      const float* a = A + k * in;
      for (int64_t i = 0; i < in; ++i) delta[i] += b * a[i];
    }
    float* row = M + o * in;
    for (int64_t i = 0; i < in; ++i) row[i] += delta[i] * scale;
  }
  return merged;
}

Tensor lora_merged_weight(const Tensor& W, const LoraAdapter* adapter, float user_scale, int layer,
                          LoraModule module) {
  if (adapter == nullptr || user_scale == 0.0f) return W;
  const LoraWeights* lw = adapter->find(layer, module);
  if (lw == nullptr) return W;
  return merge_lora_weight(W, *lw, adapter->config.scale() * user_scale);
}

WeightStore merge_lora_into(const WeightStore& snapshot, const LoraAdapter& adapter, float user_scale,
                            const MusicgenDecoderConfig& model, bool cross_attention) {
  check_lora_adapter(adapter, model, cross_attention);
  MG_CHECK(std::isfinite(user_scale), "LoRA scale must be a finite number, found ", user_scale);
  std::map<std::string, Tensor> merged;
  if (user_scale == 0.0f) return snapshot;
  for (const LoraWeights& w : adapter.weights) {
    const std::string name =
        "decoder.model.decoder.layers." + std::to_string(w.layer) + "." + lora_module_name(w.module) + ".weight";
    const Tensor W = snapshot.get(name, lora_module_shape(w.module, model));
    MG_CHECK(W.dtype == DType::F32 || W.dtype == DType::F16 || W.dtype == DType::BF16, "cannot merge a LoRA adapter into ",
             snapshot.source(), ": its decoder weights are stored quantized; load the f32/f16 snapshot with the "
             "adapter (quantizing at load merges first)");
    merged[name] = merge_lora_weight(W, w, adapter.config.scale() * user_scale);
  }
  return snapshot.with_replaced(merged);
}

}  // namespace mg
