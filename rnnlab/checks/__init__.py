"""Gradient checks of the architectures beyond RNN, LSTM and GRU.

Each module here registers its checks into :data:`rnnlab.gradcheck.CHECKS` with
:func:`rnnlab.gradcheck.register` when imported; :data:`rnnlab.gradcheck.CHECK_MODULES` lists
them so ``rnnlab gradcheck`` runs every one.
"""
