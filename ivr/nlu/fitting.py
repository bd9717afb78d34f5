"""The SVM fits of a build (the model, its calibration folds, the out-of-scope folds), side by side in worker
processes when a grammar is big enough to gain from it.

Why processes: liblinear shuffles with one random generator per process. Fits running at once in threads draw from
it in turn, and the same phrases gave scores several hundredths apart from build to build. A worker process seeds
its own generator for each fit, so fits there give bitwise the models fitted one after another here: only faster.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported only to train: a worker loading a cached classifier never needs it
    from sklearn.pipeline import FeatureUnion
    from sklearn.svm import LinearSVC

log = logging.getLogger(__name__)
# in this process, one fit at a time (an admin's draft built while the watcher builds): see the module docstring
_ONE_FIT_AT_A_TIME = threading.Lock()
# Below this many phrases a build fits in this process: the fits then take less than starting the workers and sending
# them the data. Set to 0 to always use them, or to a huge number to never (tests compare both).
PARALLEL_FROM = 600
# What the workers' server imports once, so that each worker forked from it starts with scikit-learn loaded.
_PRELOAD = ["sklearn.svm", "sklearn.feature_extraction.text", "sklearn.pipeline", "ivr.nlu.fitting"]


def ngram_features() -> FeatureUnion:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)),
    ])


def stack(ngram_rows, dense: np.ndarray | None):
    from scipy import sparse

    return ngram_rows if dense is None else sparse.hstack([ngram_rows, sparse.csr_matrix(dense)]).tocsr()


@dataclass(frozen=True)
class Fitted:
    """A fitted model as plain arrays: what a worker process sends back (scikit-learn's own objects would import
    scikit-learn, ~2 s, into the serving process to unpickle them) and what the classifier's scorer is made of."""
    vocabularies: list[dict[str, int]]  # of the word and the character n-grams (`ngram_features`' order): column
    idfs: list[np.ndarray]
    weights: np.ndarray  # one row per feature (each vocabulary's columns, then the dense ones), one column per class
    intercept: np.ndarray


def fit(texts: Sequence[str], gold: np.ndarray, dense: np.ndarray | None) -> Fitted:
    """N-gram vocabularies and one linear SVM over them (and the embeddings, when given)."""
    ngrams, svm = fit_svm(texts, gold, dense)
    vectorizers = [vectorizer for _, vectorizer in ngrams.transformer_list]
    two = len(svm.classes_) == 2  # one margin, for the second class
    coef = np.vstack([-svm.coef_[0], svm.coef_[0]]) if two else svm.coef_
    intercept = np.array([-svm.intercept_[0], svm.intercept_[0]]) if two else svm.intercept_
    return Fitted([dict(v.vocabulary_) for v in vectorizers], [v.idf_ for v in vectorizers], coef.T, intercept)


def fit_svm(texts: Sequence[str], gold: np.ndarray, dense: np.ndarray | None) -> tuple[FeatureUnion, LinearSVC]:
    """The same as scikit-learn's objects (to score held-out rows in the worker that fitted them)."""
    from sklearn.svm import LinearSVC

    ngrams = ngram_features()
    # With embeddings, one multi-class SVM (Crammer-Singer) instead of one per intent: 0.7-1.0 points more
    # BANKING77 10-shot accuracy and 0.2 more CLINC150, measured on phrases of the training splits left out of
    # training, and less fitting time. Its tolerance 0.1 and both SVMs' fixed shuffling seed: the same grammar gives
    # the same scores from build to build (at tolerance 0.3 they moved by up to 0.065 with the seed). N-grams alone
    # stay one-vs-rest: no better there (xSID-de), and the benchmark's baseline is that. C 0.3 rather than 0.5: on
    # BANKING77 and CLINC150 training phrases held out (three folds; 10, 30 and all phrases per intent) +0.01…+0.19
    # points at every size, 0.2 no better; and each fit is ~15 % faster.
    svm = (LinearSVC(C=1.0, random_state=0) if dense is None
           else LinearSVC(C=0.3, multi_class="crammer_singer", tol=0.1, random_state=0))
    features = stack(ngrams.fit_transform(texts), dense)
    with _ONE_FIT_AT_A_TIME:
        svm.fit(features, gold)
    return ngrams, svm


def held_out_margins(texts: Sequence[str], gold: np.ndarray, dense: np.ndarray | None, fit_rows: np.ndarray,
                     score_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit on some rows, score others: their margins (one column per class the fitted rows had) and those classes."""
    def rows(which: np.ndarray) -> tuple[list[str], np.ndarray | None]:
        return [texts[i] for i in which], dense[which] if dense is not None else None

    fit_texts, fit_dense = rows(fit_rows)
    score_texts, score_dense = rows(score_rows)
    ngrams, svm = fit_svm(fit_texts, gold[fit_rows], fit_dense)
    margins = svm.decision_function(stack(ngrams.transform(score_texts), score_dense))
    if margins.ndim == 1:  # two classes: one margin, for the second class
        margins = np.column_stack([-margins, margins])
    return margins, svm.classes_


def run_all(calls: Sequence[tuple[Callable[..., Any], tuple]], *, phrases: int) -> list[Any]:
    """Each call's result, in order: in worker processes (one per core) for a grammar of `phrases` ≥ PARALLEL_FROM,
    else here one after another. If the workers cannot start or die, the fits run here: slower, never lost. An
    error of a fit itself is raised as it is (the catalog reports the build as failed)."""
    workers = min(len(calls), os.cpu_count() or 1)
    if phrases < PARALLEL_FROM or workers < 2:
        return [function(*args) for function, args in calls]
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            futures = [pool.submit(function, *args) for function, args in calls]
            return [future.result() for future in futures]
    except (BrokenProcessPool, OSError, ImportError) as error:  # no /dev/shm, a worker killed for memory, …
        log.warning("fitting in worker processes failed (%s): fitting in this process, one after another", error)
        return [function(*args) for function, args in calls]


def start_workers() -> None:
    """Have the workers' server running, with scikit-learn imported (~2 s on 2 cores), before the next big build: a
    service serving a big grammar calls it at load, so that an admin's first edit does not wait for it."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=_context()) as pool:
            pool.submit(int).result()
    except Exception as error:  # the build will fit in this process, and say so
        log.warning("fitting workers cannot start (%s)", error)


def _context() -> multiprocessing.context.ForkServerContext:
    """Workers forked from a small server process that has imported scikit-learn once. Not forked from this
    process: it runs onnxruntime's and the web server's threads, which a fork would copy mid-step."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context
