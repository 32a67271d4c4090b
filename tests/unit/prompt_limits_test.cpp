// Prompts the text encoder cannot use are refused before they cost anything (docs/LIMITS.md):
// invalid UTF-8, more than kMaxPromptBytes (checked before SentencePiece runs: a 100k-character
// prompt used to reach the encoder and ask for ~160 GB of attention scores) and more than
// kMaxPromptTokens tokens (an 8,000-word prompt asked for ~24 GB). The last test runs the whole
// C API path in a child process and checks its peak resident memory (ru_maxrss).
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "conditioning/tokenizer.h"
#include "musicgen.h"
#include "test_util.h"

namespace {

const std::string kModel = std::string(MG_SOURCE_DIR) + "/tests/data/models/musicgen_tiny";

std::string words(int n, const std::string& word) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? " " : "") + word;
  return s;
}

}  // namespace

TEST(PromptLimits, Utf8Validation) {
  EXPECT_EQ(mg::first_invalid_utf8("80s synth pop, caf\xC3\xA9, \xE2\x99\xAB, \xF0\x9F\x8E\xB8"), std::string::npos);
  EXPECT_EQ(mg::first_invalid_utf8("ab\xFF"), 2u);            // not a lead byte
  EXPECT_EQ(mg::first_invalid_utf8("a\xC3"), 1u);             // cut sequence
  EXPECT_EQ(mg::first_invalid_utf8("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(mg::first_invalid_utf8("x\xED\xA0\x80"), 1u);     // a UTF-16 surrogate
  EXPECT_EQ(mg::first_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
}

TEST(PromptLimits, InvalidUtf8IsRefusedWithItsOffset) {
  auto tok = mg::T5Tokenizer::load(kModel);
  const std::string err = mgtest::error_of([&] { tok->encode("lo-fi \xFF beats"); });
  EXPECT_EQ(err, "the prompt is not valid UTF-8 (byte 6 does not start a valid character); pass the text as UTF-8");
}

TEST(PromptLimits, TooManyBytesAreRefusedBeforeTokenizing) {
  auto tok = mg::T5Tokenizer::load(kModel);
  const std::string err = mgtest::error_of([&] { tok->encode(std::string(100000, 'a')); });
  EXPECT_EQ(err, "the prompt is too long: 100000 bytes, at most 16384 are read (and at most 512 tokens used: about "
                 "300 words); shorten the prompt");
  EXPECT_NE(mgtest::error_of([&] { tok->encode(words(8000, "guitar")); }).find("55999 bytes"), std::string::npos);
}

TEST(PromptLimits, TooManyTokensAreRefused) {
  auto tok = mg::T5Tokenizer::load(kModel);
  EXPECT_EQ(tok->encode(words(100, "drums")).size() <= size_t(mg::kMaxPromptTokens), true);
  const std::string err = mgtest::error_of([&] { tok->encode(words(2000, "a")); });
  EXPECT_NE(err.find("the prompt is too long: "), std::string::npos) << err;
  EXPECT_NE(err.find(" tokens (</s> included), the text encoder takes at most 512"), std::string::npos) << err;
}

// A 100k-character prompt through musicgen_session_generate in a child: a clear error status and
// message, and the child's peak resident memory stays under 512 MB (the tiny model is ~1 MB).
TEST(PromptLimits, HugePromptThroughTheCApiStaysBounded) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    musicgen_model_params mp = musicgen_model_default_params();
    mp.device = MUSICGEN_DEVICE_CPU;
    mp.n_threads = 1;
    musicgen_model* m = nullptr;
    if (musicgen_model_load(kModel.c_str(), &mp, &m) != MUSICGEN_OK) _exit(2);
    musicgen_session* s = nullptr;
    if (musicgen_session_create(m, nullptr, &s) != MUSICGEN_OK) _exit(3);
    const std::string prompt(100000, 'x');
    musicgen_generate_params gp = musicgen_generate_default_params();
    gp.prompt = prompt.c_str();
    gp.duration_s = 0.1f;
    musicgen_audio out{};
    const musicgen_status st = musicgen_session_generate(s, &gp, &out);
    const std::string err = musicgen_last_error();
    if (st == MUSICGEN_OK || err.find("the prompt is too long: 100000 bytes") == std::string::npos) _exit(4);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    _exit(ru.ru_maxrss < 512 * 1024 ? 0 : 5);  // kilobytes
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died (signal " << WTERMSIG(status) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: load failed, 3: session failed, 4: no clear error, 5: over 512 MB";
}
