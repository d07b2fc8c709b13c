"""Reading and writing files: RAW (rawpy), headerless mosaics, sRGB images, SIDD .MAT, DNG out.

Only :mod:`rawadapt.io.bayer` is light; the readers import rawpy/h5py lazily.
"""
