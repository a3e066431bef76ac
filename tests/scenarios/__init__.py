"""The trader's scenarios: each module proves one money rule (issue 12), named for what it
proves."""
