"""Server-rendered pages: thin routes that render templates; every datum comes from the JSON API."""
