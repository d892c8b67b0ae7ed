"""Regenerate the example PDFs of this folder: `uv run python examples/pdf_library/make_pdfs.py`.

The texts are short primers written for rolegraph's examples (Apache-2.0, like the
rest of the repository); they are not papers. Each PDF is three pages with a text
layer, written by `rolegraph.testing.pdf` so the files stay small and the output
is byte for byte the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

from rolegraph.testing.pdf import write_pdf

HERE = Path(__file__).resolve().parent

LOW_RANK = [
    "Low-Rank Adapters: A Short Primer\n\n"
    "rolegraph example library, 2025\n\n"
    "Fine-tuning every weight of a large language model is expensive: each task needs a full copy of the "
    "model, and the optimiser keeps two more values for every weight. Parameter-efficient fine-tuning "
    "changes only a small number of parameters and leaves the rest of the pretrained network frozen. "
    "This primer describes low-rank adapters, the most widely used method of this kind.",
    "The idea\n\n"
    "A low-rank adapter keeps a pretrained weight matrix W frozen and learns an update written as the "
    "product of two thin matrices, B times A. The rank r of the update is small, often 4 to 16, so the "
    "two matrices hold far fewer values than W itself. During training only A and B receive gradients. "
    "Because the update has the same shape as W, it can be added to W once training ends. The merged "
    "model then runs exactly as fast as the original one, with no extra layer at inference time.",
    "Practical notes\n\n"
    "Adapters are usually placed on the attention projections. Initialising B to zero makes the adapted "
    "model start out identical to the pretrained one. One base model can serve many tasks by keeping one "
    "small pair of matrices per task and swapping them as needed. The rank is the main setting to tune: "
    "a higher rank adds capacity but also memory and the risk of overfitting small data sets.",
]

QUANTISED = [
    "Fine-Tuning Quantised Models\n\n"
    "rolegraph example library, 2025. DOI: 10.5555/rolegraph.example.2\n\n"
    "Quantisation stores weights with fewer bits, for example 4 bits instead of 16. A quantised model "
    "needs a fraction of the memory, which lets a large model fit on a single graphics card. This note "
    "explains how a quantised model can still be fine-tuned.",
    "Training through frozen quantised weights\n\n"
    "The base weights stay frozen in their 4-bit form. Gradients flow through them into small low-rank "
    "adapters that are kept in higher precision. Only the adapters are updated, so the optimiser state "
    "is small as well. Paged optimiser states can move to main memory during spikes of memory use.",
    "What is lost\n\n"
    "Quantisation adds rounding error to every weight. Careful choices of the number format reduce that "
    "error, and the trained adapters can compensate for part of it. Reported results show quality close "
    "to full-precision fine-tuning at a much lower memory cost, although each setup should be checked on "
    "its own evaluation data.",
]


def main() -> None:
    """Write both PDFs next to this script."""
    write_pdf(HERE / "low-rank-adapters.pdf", LOW_RANK, title="Low-Rank Adapters: A Short Primer")
    write_pdf(HERE / "quantised.pdf", QUANTISED)


if __name__ == "__main__":
    main()
