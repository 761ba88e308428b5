<?php
// The framework from Debian's php-laravel-framework (on PHP's include_path: /usr/share/php),
// and this application's own classes (namespace App\ in app/), without Composer.

require_once 'Illuminate/autoload.php';

spl_autoload_register(function (string $class): void {
    if (strncmp($class, 'App\\', 4) !== 0) {
        return;
    }
    $file = dirname(__DIR__).'/app/'.str_replace('\\', '/', substr($class, 4)).'.php';
    if (is_file($file)) {
        require $file;
    }
});
