"""The modality focusing hypothesis (MFH, Xue et al., ICLR 2023): its synthetic Gaussian study (``avkd mfh
simulate``), docs/mfh.md.

- :mod:`avkd.mfh.gauss`: the two-modality Gaussian data, with the modality Venn diagram's α, β, γ of each setting;
- :mod:`avkd.mfh.linear`: linear teachers and students trained full batch, vectorised over runs, and Algorithm 1's
  permutation salience;
- :mod:`avkd.mfh.naive`: the same computations one run at a time with ``torch.nn`` (the tests' oracle and the
  benchmark's baseline);
- :mod:`avkd.mfh.simulate`: experiments 1 and 2 and the Table 2 variant, and the stage that writes the artifact;
- :mod:`avkd.mfh.published`: the paper's numbers and those of a rerun of the official code;
- :mod:`avkd.mfh.salience`, :mod:`avkd.mfh.probes`: Algorithm 1's permutation salience of trained models over a
  whole split, at their input features or a layer (``avkd mfh diagnose``);
- :mod:`avkd.mfh.diagnose`: the diagnose stage: salience, a γ estimate, the freeze check and a verdict.
"""
