//===- Corpus.h - Reading a pretraining corpus ------------------*- C++ -*-===//
//
// `kiln pretrain` learns from plain text: one file, or every text file under
// a directory. readCorpus turns either into one string of documents separated
// by blank lines, in a fixed order, so the same path always gives the same
// bytes (and so the same tokenizer and token files). Binary files, such as
// the `.dat` indexes next to fortune files, are skipped, and so are second
// names of one file (the `.u8` symlinks of the fortunes package). Fortune
// files are read as fortunes: their `%` separator lines become blank lines.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_CORPUS_H
#define KILN_TRAIN_CORPUS_H

#include "kiln/Runtime/Status.h"

#include <string>
#include <string_view>
#include <vector>

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

/// The corpus used when none is given: the Debian `fortunes` package
/// (about 2.5 MB of English text in 40-odd files).
std::string defaultCorpusPath();

/// The files readCorpus would read for `path`, in the order it reads them:
/// `path` itself when it is a file; for a directory, every regular file
/// under it (recursively, symlinks to files included, hidden entries
/// skipped) that is UTF-8 text, sorted by path, each file once even when it
/// has several names. Errors: `path` does not exist, or is neither a file
/// nor a directory, or is a file that is not UTF-8 text.
Expected<std::vector<std::string>> listCorpusFiles(const std::string &path);

/// Reads the corpus at `path` (see listCorpusFiles): each file's text goes
/// through normalizeCorpusText, and the files are joined by a blank line.
/// The result ends with a single newline. Errors as listCorpusFiles, plus
/// "contains no text" when nothing is left.
Expected<std::string> readCorpus(const std::string &path);

/// Whether `bytes` is text: well-formed UTF-8 (no overlong forms, no
/// surrogates, nothing past U+10FFFF) without NUL bytes.
bool isUtf8Text(std::string_view bytes);

/// One file's text as it enters the corpus: CR LF becomes LF; terminal
/// overstrikes (`_\bX`, `X\bX`, used by old fortunes for underline and bold)
/// keep the character that is drawn last; BEL characters are dropped; a line
/// that is exactly `%` (the fortune separator) becomes a blank line; trailing
/// spaces and tabs are removed from every line; runs of blank lines become
/// one; and blank lines at the start and end are removed. The result has no
/// trailing newline.
std::string normalizeCorpusText(std::string_view text);

/// Splits `corpus` into documents: each piece ends just after a blank-line
/// separator ("\n\n"), except the last, which runs to the end. The pieces
/// are views into `corpus` and concatenate back to it exactly.
std::vector<std::string_view> splitDocuments(std::string_view corpus);

} // namespace kiln::train

#endif // KILN_TRAIN_CORPUS_H
