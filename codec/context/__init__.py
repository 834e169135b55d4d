"""Channel-slice and checkerboard context models, shared by the image codecs that use them.

The latent is cut into channel slices (Minnen & Singh, "Channel-wise Autoregressive
Entropy Models for Learned Image Compression", ICIP 2020); each slice is coded in two
checkerboard passes, anchors then non-anchors (He et al., "Checkerboard Context Model for
Efficient Learned Image Compression", CVPR 2021), so decoding takes ``2 x slices``
sequential steps, each parallel over all positions.

* :mod:`codec.context.checkerboard`: the anchor pattern;
* :mod:`codec.context.modules`: the trainable pieces (parameter heads, latent residual
  prediction, channel reweighting, linear attention), each built from operations that have
  an exact integer counterpart;
* :mod:`codec.context.integer`: those counterparts, which choose the coding tables
  identically on every machine;
* :mod:`codec.context.coding`: the staged coding loop over :mod:`entropy`'s group coder.
"""
