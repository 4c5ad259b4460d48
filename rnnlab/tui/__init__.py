"""rnnlab's Textual user interface: the app, its screens and the widgets they are built from."""
