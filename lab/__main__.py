from .namespaces import main

main()
