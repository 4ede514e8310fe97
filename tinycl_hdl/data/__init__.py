"""Data shipped with TinyCL-HDL: the SKY130 standard-cell Liberty (see ``NOTICE.md``)."""
