"""course_utils: the helper library of *Fine-tuning and Prompt Design for Language Models*.

Modules, by concern (each function's docstring names the chapter that introduces it):

- ``assets``: pinned models and data from PyPI, checksummed and cached offline
- ``models``: load encoders, classifiers and causal LMs by name, folder or Hub id; the device
- ``data``: the movie reviews, out-of-domain and Chinese sets, validated JSONL files
- ``training``: the course's training loop (accelerate) and a ``transformers.Trainer`` twin
- ``evaluation`` and ``plots``: metrics (scikit-learn) and figures (matplotlib)
- ``experiments``: a cache of finished runs keyed by their configuration
- ``pretraining`` (chapter 2), ``mathutils`` (chapter 4): a tiny GPT; hand-written gradients
- ``project`` (chapter 5): the reference classifier, reloaded by chapter 6; pipeline predictions
- ``prompting`` (chapter 6): chat prompts, verbalizer scoring, calibration, output parsing
- ``exercises`` and ``solutions``: auto-checked exercises with hints, and their solutions
- ``doctor``: environment check

Nothing is imported here: ``import course_utils`` is instant, and each notebook pays only for the
modules it uses. The maintainers' tools (chapter discovery, pairing checks, execution, the site's
course map) are not part of the package: they live in ``scripts/`` and ``book/_ext/``.
"""

__version__ = "0.1.0"
