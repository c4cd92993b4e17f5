#!/usr/bin/env bash
# The fast part of the labelled corpus of `memfence diagnose`
# (tests/diagnose_corpus.sh; all of it: make diagnose-corpus): an oversized
# request refused early by the admission gate, a leak that fills the
# container until calls are refused, and a leak with oversized requests.
# Each must be diagnosed right, live and after the run.
exec "$(dirname "$0")/../diagnose_corpus.sh" --fast
