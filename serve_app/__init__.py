"""Ray Serve application: online scoring over the same model bundle batch scoring uses.

`serve run serve_app/serve_config.yaml` or `ocsf-ray serve --model BUNDLE`; the
endpoints, limits and caveats are in docs/SERVING.md.
"""
