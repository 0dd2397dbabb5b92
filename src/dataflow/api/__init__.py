"""The HTTP application (Litestar): partner routes, admin routes and the console's pages.

Thin handlers over the services; the only package that may import every other one.
"""
