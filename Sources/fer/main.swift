print("fer")
