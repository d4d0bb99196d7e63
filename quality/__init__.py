"""Quality: Great Expectations suites over registration and consumption."""
