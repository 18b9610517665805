"""Raw recordings in, one analysed model out."""
