import unittest

import app


class GreetingTest(unittest.TestCase):
    def test_greeting_names_the_version(self) -> None:
        self.assertEqual(app.greeting("7"), "pipeline app v7\n")


if __name__ == "__main__":
    unittest.main()
