"""Test-time adaptation: LAN and the fine-tuning baselines, self-supervised losses.

Light on purpose: nothing is imported here (torch loads when a sub-module is used)::

    from rawadapt.adapt.api import ADAPT_METHODS, adapt_image, make_adapter
    from rawadapt.adapt.losses import zsn2n_loss, nbr2nbr_loss, NeighborSubsampler

Modules: ``losses`` (ZS-N2N, Neighbor2Neighbor), ``lan`` (LAN), ``finetune`` (full / first /
last layer), ``meta`` (meta-learned initialisation), ``api`` (one interface), ``protocol``
(Table 1), ``cost`` (Table 2, one process per measurement), ``figures`` (Figures 4-6).
"""
