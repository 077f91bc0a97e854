"""course_utils: the helper library of *Fine-tuning and Prompt Design for Language Models*.

Modules, by concern (each function's docstring names the chapter that introduces it):

- ``assets``: pinned models and data from PyPI, checksummed and cached offline
- ``models``: load encoders, classifiers and causal LMs by name, folder or Hub id; the device
- ``data``: the movie reviews, out-of-domain and Chinese sets, validated JSONL files
- ``training``: the course's training loop (accelerate) and a ``transformers.Trainer`` twin
- ``evaluation`` and ``plots``: metrics (scikit-learn) and figures (matplotlib)
- ``exercises``: auto-checked exercises with hints
- ``doctor``: environment check
"""

__version__ = "0.1.0"
