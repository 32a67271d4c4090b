// Shared by the two halves of the encodec.h C API (api/audio_api.cpp, api/encodec_api.cpp): the
// per-thread error slot and guard(), which turns anything thrown into a status and a message, so
// nothing crosses the C boundary. Internal: not installed.
#pragma once

#include <new>
#include <string>

#include "codec/audio_file.h"
#include "encodec.h"
#include "kernels/common.h"

namespace mg::capi {

void set_last_error(const std::string& message);  // api/audio_api.cpp owns the slot

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

inline encodec_status fail(encodec_status status, const std::string& message) {
  set_last_error(message);
  return status;
}

// Runs `body` (which returns a status itself when it fails a check of its own) and maps what it
// throws: request problems are the caller's arguments, data problems the content; `other` is the
// status of an mg::Error not classified otherwise (I/O for files).
template <typename Body>
encodec_status guard(const char* where, encodec_status other, Body&& body) {
  try {
    return body();
  } catch (const ArgumentError& e) {
    return fail(ENCODEC_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const IoError& e) {
    return fail(ENCODEC_ERROR_IO, e.what());
  } catch (const FormatError& e) {
    return fail(ENCODEC_ERROR_FORMAT, e.what());
  } catch (const mg::AudioRequestError& e) {
    return fail(ENCODEC_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const mg::AudioDataError& e) {
    return fail(ENCODEC_ERROR_FORMAT, e.what());
  } catch (const mg::Error& e) {
    return fail(other, e.what());
  } catch (const std::bad_alloc&) {
    return fail(ENCODEC_ERROR_OUT_OF_MEMORY, std::string(where) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(ENCODEC_ERROR_INTERNAL, std::string(where) + ": " + e.what());
  } catch (...) {
    return fail(ENCODEC_ERROR_INTERNAL, std::string(where) + ": unknown exception");
  }
}

}  // namespace mg::capi
