// Shared by every file of the C API (musicgen.h, encodec.h, musicgen_common.h): the per-thread
// error slot, guard() (the one place where anything thrown becomes a status and a message, so
// nothing crosses the C boundary), and the handles both headers hand out. Internal: not installed.
#pragma once

#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "codec/audio_file.h"
#include "codec/encodec.h"
#include "encodec.h"
#include "kernels/common.h"
#include "kernels/ops.h"
#include "musicgen_common.h"

namespace mg::capi {

void set_last_error(const std::string& message);  // api/common_api.cpp owns the slot
void clear_last_error();

// Errors whose kind the caller can act on, thrown by the API code itself.
struct ArgumentError : mg::Error {
  using mg::Error::Error;
};
struct IoError : mg::Error {
  using mg::Error::Error;
};
struct FormatError : mg::Error {
  using mg::Error::Error;
};
struct ModelError : mg::Error {
  using mg::Error::Error;
};
struct DeviceError : mg::Error {
  using mg::Error::Error;
};
struct AbortedError : mg::Error {
  using mg::Error::Error;
};

inline musicgen_status fail(musicgen_status status, const std::string& message) {
  set_last_error(message);
  return status;
}

// Runs `body` (which returns a status itself when a check of its own fails) and maps what it
// throws: the API's own error kinds and the audio layer's (request: the caller's arguments; data:
// the content) to their statuses; `other` is the status of any other mg::Error (its message says
// what and where already); `where` (the entry point) prefixes what has no message of ours.
template <typename Body>
musicgen_status guard(const char* where, musicgen_status other, Body&& body) noexcept {
  try {
    return body();
  } catch (const ArgumentError& e) {
    return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const IoError& e) {
    return fail(MUSICGEN_ERROR_IO, e.what());
  } catch (const FormatError& e) {
    return fail(MUSICGEN_ERROR_FORMAT, e.what());
  } catch (const ModelError& e) {
    return fail(MUSICGEN_ERROR_MODEL, e.what());
  } catch (const DeviceError& e) {
    return fail(MUSICGEN_ERROR_DEVICE, e.what());
  } catch (const AbortedError& e) {
    return fail(MUSICGEN_ERROR_ABORTED, e.what());
  } catch (const mg::AudioRequestError& e) {
    return fail(MUSICGEN_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const mg::AudioDataError& e) {
    return fail(MUSICGEN_ERROR_FORMAT, e.what());
  } catch (const mg::Error& e) {
    return fail(other, e.what());
  } catch (const std::bad_alloc&) {
    return fail(MUSICGEN_ERROR_OUT_OF_MEMORY, std::string(where) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(MUSICGEN_ERROR_INTERNAL, std::string(where) + ": " + e.what());
  } catch (...) {
    return fail(MUSICGEN_ERROR_INTERNAL, std::string(where) + ": unknown exception");
  }
}

// Where a model computes. The weights stay where the load backend put them. On the CPU they are
// host tensors any CPU backend reads, so each session makes its own CPU backend (thread pool) and
// sessions run in parallel. On CUDA the sessions share the load backend (one stream, one memory
// pool, one set of recordings), so `mutex` runs their work one session at a time.
struct ModelDevice {
  std::unique_ptr<mg::Backend> backend;  // the load backend
  bool shared = false;                   // true on CUDA: sessions use `backend` under `mutex`
  std::mutex mutex;
};

// n_threads above mg::cpu::kMaxThreads (1024) is an ArgumentError; <= 0 means all cores.
void check_threads(int n_threads);

// The backend "auto/cpu/cuda" asks for. A CUDA backend is used only once it passed its probe and
// the self-check of kernels/device_check.h: with CUDA asked for, a failure is a DeviceError; with
// AUTO it falls back to the CPU after a one-line warning on stderr (warn_device_fallback).
// *cuda: whether the result is the CUDA backend.
std::unique_ptr<mg::Backend> make_model_backend(musicgen_device device, int n_threads, bool* cuda);

// make_model_backend with the GPU's presence and factory given, so that the fallback can be tested
// on a machine without one (a CPU backend standing in for the device).
using DeviceFactory = std::unique_ptr<mg::Backend> (*)(int device_index);
std::unique_ptr<mg::Backend> make_model_backend_with(musicgen_device device, int n_threads, bool* cuda,
                                                     bool device_present, DeviceFactory make_device);

// "libmusicgen: warning: CUDA not used (<why, on one line>); running on the CPU" on stderr.
void warn_device_fallback(const std::string& why);

// Loads a model with `load(backend)` on the backend `device` asks for (make_model_backend), into
// `dev`, then, on a GPU, runs `check(model, backend)`: the self-check of the loaded model against
// the CPU (lm/device_self_check.h, codec/device_self_check.h), which throws mg::Error on a
// mismatch. With AUTO, a load that fails on the GPU (its memory, a kernel) or a failed check is
// retried on the CPU after a one-line warning: what the CPU load then reports is the error, if
// any. With CUDA, a failed check is a DeviceError. The last two parameters are
// make_model_backend_with's (tests).
template <typename Load, typename Check>
auto load_on_device(musicgen_device device, int n_threads, ModelDevice& dev, Load&& load, Check&& check,
                    bool device_present = mg::cuda_device_present(),
                    DeviceFactory make_device = &mg::make_cuda_backend) {
  dev.backend = make_model_backend_with(device, n_threads, &dev.shared, device_present, make_device);
  if (!dev.shared) return load(*dev.backend);
  std::string why;
  try {
    auto model = load(*dev.backend);
    try {
      check(*model, *dev.backend);
      return model;
    } catch (const mg::Error& e) {
      if (device != MUSICGEN_DEVICE_AUTO) throw DeviceError(e.what());
      why = e.what();
    }
  } catch (const DeviceError&) {
    throw;
  } catch (const mg::Error& e) {
    if (device != MUSICGEN_DEVICE_AUTO) throw;
    why = std::string("loading the model on it failed: ") + e.what();
  }
  warn_device_fallback(why);  // the model made on the device is gone by now: its memory is free
  dev.backend = mg::make_cpu_backend(n_threads);
  dev.shared = false;
  return load(*dev.backend);
}

// A session's backend: its own CPU backend, or its model's shared one (locked by lock()).
class SessionBackend {
 public:
  SessionBackend(ModelDevice& dev, int n_threads);
  mg::Backend& get() { return own_ ? *own_ : *dev_.backend; }
  // Held while the session computes: a no-op on the CPU, the model's mutex on CUDA.
  std::unique_lock<std::mutex> lock() {
    return dev_.shared ? std::unique_lock<std::mutex>(dev_.mutex) : std::unique_lock<std::mutex>();
  }

 private:
  ModelDevice& dev_;
  std::unique_ptr<mg::Backend> own_;
};

}  // namespace mg::capi

// A loaded EnCodec: its own (encodec_model_load) or the codec inside a MusicGen model
// (musicgen_model_codec), which then borrows that model's device.
struct encodec_model {
  mg::capi::ModelDevice own_device;
  mg::capi::ModelDevice* device = &own_device;
  std::unique_ptr<mg::EncodecModel> owned;
  const mg::EncodecModel* model = nullptr;
  std::string ecdc_name;     // "" when the model has no .ecdc name
  std::string ecdc_refusal;  // why not, for the error of writing an .ecdc
};

struct encodec_codes {
  mg::EncodedAudio codes;
};

namespace mg::capi {
// Points `m` at `model` (owned or borrowed) and works out its .ecdc name.
void bind_encodec_model(encodec_model& m, const mg::EncodecModel& model);
}  // namespace mg::capi
