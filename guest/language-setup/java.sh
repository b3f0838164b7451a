#!/bin/sh
# Run by scripts/build-guest-image inside the image (a chroot with a private /tmp) after the languages'
# packages are in place: saves the classes javac loads as a CDS archive (class data sharing), which the
# java recipe's compile command maps instead of loading, parsing and verifying them again.
#
# Why: under TCG javac spent most of a hello world's compile loading its own classes (~8 s a job). The
# JVM checks that an archive matches it (its build, the base archive, the GC); one that does not match,
# or is missing, is ignored and the classes load as before. The JVM flags are the recipe's
# (guest/languages.json; RegistryTests holds the two to each other).
set -eu
archive=/usr/lib/codebench/java/javac.jsa
mkdir -p "${archive%/*}"
work=$(mktemp -d /tmp/javac-cds.XXXXXX)
# What javac loads depends on what it compiles: a program with the constructs judge solutions use
# (generics, lambdas and streams, records, enums, switch expressions, inner classes, varargs, exceptions).
cat > "$work/Main.java" <<'JAVA'
import java.io.*;
import java.util.*;
import java.util.function.*;
import java.util.stream.*;

public class Main {
    enum Colour { RED, GREEN }
    record Point(int x, int y) {}
    interface Shape { double area(); }
    static class Square implements Shape {
        final double side;
        Square(double side) { this.side = side; }
        public double area() { return side * side; }
    }
    static int sum(int... values) { return IntStream.of(values).sum(); }
    static <T extends Comparable<T>> T largest(List<T> items) { return Collections.max(items); }

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        Map<String, List<Integer>> groups = new TreeMap<>();
        List<Point> points = new ArrayList<>(List.of(new Point(1, 2), new Point(3, 4)));
        Function<Point, Integer> norm = p -> p.x() * p.x() + p.y() * p.y();
        String text = points.stream().map(norm).map(String::valueOf).collect(Collectors.joining(","));
        Colour colour = Colour.valueOf(args.length > 0 ? args[0] : "RED");
        int code = switch (colour) { case RED -> 1; case GREEN -> 2; };
        try (StringWriter writer = new StringWriter()) {
            writer.write(String.format("%s %d %d %.2f%n", text, code, sum(1, 2, 3), new Square(2).area()));
            groups.computeIfAbsent("a", k -> new ArrayList<>()).add(largest(Arrays.asList(3, 1, 2)));
            System.out.print(writer);
        } catch (IllegalStateException | UnsupportedOperationException e) {
            throw new RuntimeException(e);
        }
        Optional<String> line = Optional.ofNullable(in.readLine());
        StringBuilder out = new StringBuilder();
        line.ifPresent(out::append);
        long[] counts = new long[10];
        Arrays.fill(counts, 1L);
        System.out.println(out.reverse() + " " + Arrays.stream(counts).sum() + " " + groups);
    }
}
JAVA
(cd "$work" && javac -J-XX:+UseSerialGC -J-XX:-UsePerfData -J-XX:TieredStopAtLevel=1 -J-Xshare:auto \
    -J-XX:ArchiveClassesAtExit="$archive.partial" -encoding UTF-8 -d . Main.java)
rm -rf "$work"
[ -s "$archive.partial" ] || { echo "java.sh: javac wrote no archive" >&2; exit 1; }
chmod 0444 "$archive.partial"
mv "$archive.partial" "$archive"
