fn main() {
    umer_chat_app::run()
}
